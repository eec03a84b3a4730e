"""Window arithmetic of Jukebox sampling: which n_ctx-token windows are sampled, in which order, with what.

Everything here works on plain ints and lists, so the schedule can be planned, shown and tested without a
model. A prior samples at most n_ctx tokens at once; longer levels are covered by overlapping windows whose
overlap (the already-sampled prefix) conditions the new tokens. Levels go top first (2, 1, 0); an
upsampler window at level L is conditioned on the level L+1 codes under the same span.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.prior.labels import lyric_window


@dataclass(frozen=True)
class WindowPlan:
    """One call of the reference `sample_single_window` that actually samples something.

    `end` is always start + n_ctx, as in the reference (it also bounds the upper-code slice), even for a
    partial window; `sample_tokens` is how many tokens the prior returns (prefix + new).
    """

    level: int
    start: int
    end: int
    tokens_before: int
    new_tokens: int
    sample_tokens: int

    @property
    def prefix_tokens(self) -> int:
        """Already-sampled tokens of this level inside the window, fed to the prior as its prefix."""
        return self.sample_tokens - self.new_tokens


def get_starts(total: int, n_ctx: int, hop: int) -> list[int]:
    """Window starts covering `total` tokens: every `hop`, with the last window moved flush right."""
    if hop <= 0 or total < n_ctx:
        raise ValueError(f"need hop > 0 and total >= n_ctx, got total={total}, n_ctx={n_ctx}, hop={hop}")
    # A start whose window would reach or pass the end is replaced by the flush-right start; the range
    # stops one hop past total - n_ctx, so that flush-right window appears exactly once.
    return [min(start, total - n_ctx) for start in range(0, total - n_ctx + hop, hop)]


def hop_length(hop_fraction: float, n_ctx: int) -> int:
    """Tokens between window starts of a level, truncated like the reference's `int(fraction * n_ctx)`."""
    return int(hop_fraction * n_ctx)


def split_chunks(length: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks a prefix is pushed through the cache in: full chunks, then the remainder."""
    if length <= 0 or chunk_size <= 0:
        raise ValueError(f"need length > 0 and chunk_size > 0, got {length} and {chunk_size}")
    full, rest = divmod(length, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def split_batch_sizes(n_samples: int, max_batch_size: int) -> list[int]:
    """Batch sizes of the prior calls a window is split into (the reference's `split_batch`)."""
    if n_samples <= 0 or max_batch_size <= 0:
        raise ValueError(f"need n_samples > 0 and max_batch_size > 0, got {n_samples}, {max_batch_size}")
    full, rest = divmod(n_samples, max_batch_size)
    return [max_batch_size] * full + ([rest] if rest else [])


def single_window(
    level: int, tokens_before: int, start: int, n_ctx: int, sample_tokens: int | None = None
) -> WindowPlan | None:
    """Plan of a window at `start` when the level holds `tokens_before` tokens; None if nothing is new.

    `sample_tokens=None` samples up to the window's end (n_ctx). Reference quirk: `sample_partial_window`
    stores its `sample_tokens` in the caller's sampling-kwargs dict and never removes it, so any later window
    sampled with that dict silently uses the stale value; pass it here to reproduce such a run.
    The new tokens are appended after the existing ones: the reference assumes start <= tokens_before.
    """
    if start < 0 or start > tokens_before:
        raise ValueError(f"window start {start} must lie within the {tokens_before} tokens already sampled")
    prefix = max(0, min(start + n_ctx, tokens_before) - start)
    target = n_ctx if sample_tokens is None else sample_tokens
    new = target - prefix
    if new <= 0:
        return None
    return WindowPlan(level, start, start + n_ctx, tokens_before, new, target)


def sample_partial_window(tokens_before: int, new_tokens: int, n_ctx: int) -> tuple[int, int]:
    """(start, sample_tokens) of the reference's co-composition step that adds `new_tokens` to a level.

    While everything fits in one context, the window starts at 0 and returns tokens_before + new_tokens
    tokens; after that it is a full window ending at the new end. The reference then keeps
    `sample_tokens` in the caller's kwargs (see `single_window`).
    """
    if new_tokens <= 0 or new_tokens > n_ctx:
        raise ValueError(f"can add 1..{n_ctx} tokens per window, asked for {new_tokens}")
    if tokens_before < n_ctx - new_tokens:
        return 0, tokens_before + new_tokens
    return tokens_before - n_ctx + new_tokens, n_ctx


def partial_window(level: int, tokens_before: int, new_tokens: int, n_ctx: int) -> WindowPlan:
    start, sample_tokens = sample_partial_window(tokens_before, new_tokens, n_ctx)
    plan = single_window(level, tokens_before, start, n_ctx, sample_tokens)
    assert plan is not None and plan.new_tokens == new_tokens  # holds by construction
    return plan


def upper_code_slice(start: int, end: int, cond_downsample: int) -> slice:
    """Columns of the level-above codes that condition an upsampler window [start, end)."""
    if start % cond_downsample or end % cond_downsample:
        raise ValueError(f"window [{start}, {end}) is not aligned to the upper level ({cond_downsample}x)")
    return slice(start // cond_downsample, end // cond_downsample)


def window_label(
    base_y: Sequence[int],
    full_tokens: Sequence[int],
    start: int,
    raw_to_tokens: int,
    sample_length: int,
    n_tokens: int,
) -> tuple[list[int], list[int] | None]:
    """The reference's `get_y` for one item: the label vector a window at `start` is sampled with.

    Sets the sample length to the prior's own (n_ctx * raw_to_tokens), moves the offset by the window's
    position in audio samples and, for lyric priors, re-picks the lyric window (float32 arithmetic, as the
    reference does on label tensors). Returns the vector and the lyric indices (None without lyrics).
    """
    y = [int(v) for v in base_y]
    y[2] = int(sample_length)
    y[1] += int(start * raw_to_tokens)
    if n_tokens == 0:
        return y, None
    tokens, indices = lyric_window(full_tokens, n_tokens, y[0], y[1], y[2], float32=True)
    y[len(y) - n_tokens :] = tokens
    return y, indices


def seconds_to_tokens(
    seconds: float, sr: int, raw_to_tokens: int, chunk_size: int, n_ctx: int | None = None
) -> int:
    """The notebook's generation length: tokens for `seconds`, rounded up to a chunk multiple.

    Quirk kept on purpose: an exact multiple still gets one more chunk (`(t // chunk + 1) * chunk`).
    """
    tokens = int(seconds * sr // raw_to_tokens)
    tokens = (tokens // chunk_size + 1) * chunk_size
    if n_ctx is not None and tokens > n_ctx:
        raise ValueError(f"{seconds} s is {tokens} tokens, more than one context of {n_ctx}; choose less")
    return tokens


def plan_levels(
    sample_length: int,
    n_ctx: Sequence[int],
    raw_to_tokens: Sequence[int],
    hop_fraction: Sequence[float],
    levels: Sequence[int] | None = None,
    tokens_before: Sequence[int] | None = None,
) -> Iterator[WindowPlan]:
    """Every window of the reference `_sample`, in order: levels from the top down, windows left to right.

    Per-level sequences are indexed by level (0 = finest). `levels` defaults to all (ancestral sampling);
    upsampling passes the lower levels only. `tokens_before` are codes already present per level (zeros
    for ancestral sampling, the loaded codes for continuation). Levels shorter than one context are sampled
    by one partial window that adds all of them, as in the reference.
    """
    n_levels = len(n_ctx)
    levels = list(range(n_levels)) if levels is None else list(levels)
    have = [0] * n_levels if tokens_before is None else [int(v) for v in tokens_before]
    for level in sorted(levels, reverse=True):
        if sample_length % raw_to_tokens[level]:
            raise ValueError(f"sample_length {sample_length} is not a multiple of {raw_to_tokens[level]}")
        total = sample_length // raw_to_tokens[level]
        ctx = n_ctx[level]
        if total >= ctx:
            for start in get_starts(total, ctx, hop_length(hop_fraction[level], ctx)):
                plan = single_window(level, have[level], start, ctx)
                if plan is not None:
                    have[level] += plan.new_tokens
                    yield plan
        elif level != n_levels - 1:
            # Its conditioning slice would be shorter than the upsampler's window (the reference asserts).
            raise ValueError(
                f"level {level} needs at least {ctx} tokens ({ctx * raw_to_tokens[level]} samples)"
            )
        else:
            plan = partial_window(level, have[level], total, ctx)
            have[level] += plan.new_tokens
            yield plan
