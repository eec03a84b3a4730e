"""Sampling one level window by window: ancestral, primed, windowed beyond the context, and the
partial-window continuation used for co-composition.

The window arithmetic is the reference's (`engine.prior.windows`): windows every `hop` tokens with the
last one flush right, each window conditioned on the codes already in it, its labels moved to its
offset (and its lyric window re-picked), and an upsampler window conditioned on the codes of the level
above under the same span.

Seeds. With per-branch seeds, window w of level L for branch b draws from a generator seeded by
`window_seed(seed_b, L, start_w)`: a window's codes depend only on the branch seed and the codes before
it, so a run resumed from any finished window (after a restart) equals the uninterrupted run, and
batch splitting changes nothing. `REFERENCE_RNG` keeps the reference's global-RNG order instead.

Not reproduced on purpose: the reference leaves a partial window's `sample_tokens` in the caller's
kwargs, silently shortening later windows sampled with the same dict (`windows.single_window` can
replay that when needed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from engine.prior.labels import Label, blend_rows
from engine.prior.sampler import (
    REFERENCE_RNG,
    Cancelled,
    Progress,
    Resume,
    SamplingSettings,
    Seeds,
    sample,
)
from engine.prior.windows import (
    WindowPlan,
    get_starts,
    hop_length,
    partial_window,
    sample_partial_window,
    single_window,
    split_batch_sizes,
    upper_code_slice,
    window_label,
)
from engine.sampling.progress import ProgressTally

OnWindow = Callable[[WindowPlan, torch.Tensor], None]


@dataclass(frozen=True)
class WindowJob:
    """Everything one window is sampled from (also what the fixture replay checks)."""

    plan: WindowPlan
    prefix: torch.Tensor  # (N, P) codes of this level already inside the window
    labels: torch.Tensor | None  # (N, label_len): offset moved to the window, lyric window re-picked
    upper: torch.Tensor | None  # (N, n_ctx // cond_downsample) codes of the level above (upsamplers)
    blend: torch.Tensor | None = None  # (N, 2) artist blend rows [other artist id, weight], or None


def window_seed(seed: int, level: int, start: int) -> int:
    """A stable 63-bit seed for one window of one branch (same on every platform and run)."""
    digest = hashlib.blake2b(f"{int(seed)}/{level}/{start}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def plan_level(prior, total: int, have: int, hop_fraction: float, lookahead: int = 0) -> list[WindowPlan]:
    """Windows still to sample so that a level holding `have` codes reaches `total`.

    Deliberate fix: for a level shorter than one context the reference adds `total` tokens after
    whatever is there (so a primed short level overshoots); here it adds `total - have`.

    lookahead (not in the reference, which uses 0): every window but the last stops that many tokens
    short of its end and the next window samples them. An upsampler's conditioner reads the level above
    across the whole window, so the tokens near a window's end are drawn without the upper codes that
    follow them (their held-out loss is clearly higher); a lookahead keeps only tokens that had them.
    The windows and their count stay the same; each prefix is `lookahead` tokens shorter.
    """
    cfg = prior.config
    hop = hop_length(hop_fraction, cfg.n_ctx)
    if lookahead < 0 or (lookahead and lookahead >= cfg.n_ctx - hop):
        raise ValueError(
            f"lookahead must leave every window a prefix: 0 <= lookahead < {cfg.n_ctx - hop} "
            f"(window {cfg.n_ctx} tokens, hop {hop}), got {lookahead}"
        )
    if have >= total:
        return []
    if total < cfg.n_ctx:
        if not cfg.is_top:
            raise ValueError(f"level {cfg.level} needs at least {cfg.n_ctx} codes to upsample, got {total}")
        return [partial_window(cfg.level, have, total - have, cfg.n_ctx)]
    plans = []
    for start in get_starts(total, cfg.n_ctx, hop):
        last = start + cfg.n_ctx >= total
        plan = single_window(cfg.level, have, start, cfg.n_ctx, None if last else cfg.n_ctx - lookahead)
        if plan is not None:
            plans.append(plan)
            have += plan.new_tokens
    return plans


def _per_item(labels: Sequence[Label] | None, n: int) -> list[Label] | None:
    if labels is None:
        return None
    labels = list(labels)
    if len(labels) == 1:
        return labels * n
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} samples")
    return labels


def window_labels(prior, labels: Sequence[Label] | None, start: int, n: int):
    """(N, label_len) labels of the window at `start` and each item's lyric indices (None without)."""
    cfg = prior.config
    if cfg.labels is None:
        return None, None
    items = _per_item(labels, n)
    if items is None:
        raise ValueError("this prior is conditioned on labels; give one Label per sample")
    rows, indices = [], []
    for label in items:
        if len(label.y) != cfg.label_len:
            raise ValueError(f"label has {len(label.y)} entries, this prior takes {cfg.label_len}")
        y, idx = window_label(
            label.y, label.full_tokens, start, cfg.raw_to_tokens, cfg.sample_length, cfg.n_tokens
        )
        rows.append(y)
        indices.append(idx)
    return torch.tensor(rows, dtype=torch.long), indices


def window_job(prior, plan: WindowPlan, codes, labels, upper_codes) -> WindowJob:
    cfg = prior.config
    n = codes.shape[0]
    prefix = codes[:, plan.start : plan.start + plan.prefix_tokens]
    y, _ = window_labels(prior, labels, plan.start, n)
    blend = None if y is None else blend_rows(_per_item(labels, n))
    upper = None
    if cfg.conditioner is not None:
        if upper_codes is None:
            raise ValueError("an upsampler needs the codes of the level above")
        cut = upper_code_slice(plan.start, plan.end, cfg.cond_downsample)
        upper = upper_codes[:, cut]
        if upper.shape[1] != cfg.n_ctx // cfg.cond_downsample:
            raise ValueError(f"the level above has too few codes for window [{plan.start}, {plan.end})")
    return WindowJob(plan, prefix, y, upper, blend)


def _branch_seeds(seeds: Seeds, level: int, start: int, a: int, b: int) -> Seeds:
    if seeds == REFERENCE_RNG:
        return REFERENCE_RNG
    return [window_seed(s, level, start) for s in seeds[a:b]]


def _rows(t: torch.Tensor | None, a: int, b: int) -> torch.Tensor | None:
    return None if t is None else t[a:b]


def sample_window(prior, job: WindowJob, seeds: Seeds, settings, max_batch_size, tally) -> torch.Tensor:
    """The new codes (N, new_tokens) of one window, in batch splits of at most max_batch_size."""
    n, new = job.prefix.shape[0], job.plan.new_tokens
    parts, a = [], 0
    for size in split_batch_sizes(n, max_batch_size or n):
        b = a + size
        result = sample(
            prior,
            _rows(job.labels, a, b),
            new,
            seeds=_branch_seeds(seeds, job.plan.level, job.plan.start, a, b),
            upper_tokens=_rows(job.upper, a, b),
            prefix=job.prefix[a:b],
            settings=settings,
            progress=tally.call(new),
            blend=_rows(job.blend, a, b),
        )
        tally.advance(new)
        parts.append(result.codes)
        a = b
    return torch.cat(parts, dim=0)


def count_samples(seeds: Seeds, codes, labels, n_samples) -> int:
    for n in (
        None if seeds == REFERENCE_RNG else len(seeds),
        None if codes is None else codes.shape[0],
        n_samples,
    ):
        if n is not None:
            return n
    if labels is not None:
        return len(labels)
    raise ValueError("give seeds, codes or n_samples")


def windowed(
    prior,
    total: int,
    *,
    seeds: Seeds,
    labels: Sequence[Label] | None = None,
    codes: torch.Tensor | None = None,
    upper_codes: torch.Tensor | None = None,
    hop_fraction: float = 0.5,
    settings: SamplingSettings | None = None,
    max_batch_size: int | None = None,
    n_samples: int | None = None,
    progress: Progress | None = None,
    on_window: OnWindow | None = None,
) -> torch.Tensor:
    """Bring one level to `total` codes per sample (the reference's `sample_level`); returns (N, total).

    codes: (N, have) codes already finished (a primed prompt, or windows done before a restart);
    sampling resumes with the next window. on_window(plan, codes_so_far) runs after every window, e.g.
    to save progress. A Cancelled raised by `progress` carries the codes of the finished windows.
    """
    settings = settings or SamplingSettings()
    n = count_samples(seeds, codes, labels, n_samples)
    device = prior.prior.x_emb.weight.device
    if codes is None:
        codes = torch.zeros(n, 0, dtype=torch.long, device=device)
    plans = plan_level(prior, total, codes.shape[1], hop_fraction)
    splits = len(split_batch_sizes(n, max_batch_size or n))
    tally = ProgressTally(progress, sum(p.new_tokens for p in plans) * splits)
    return run_plans(
        prior, plans, codes, labels, upper_codes, seeds, settings, max_batch_size, tally, on_window
    )


def run_plans(prior, plans, codes, labels, upper_codes, seeds, settings, max_batch_size, tally, on_window):
    """Sample planned windows of one level in order, appending to `codes` (see `windowed`)."""
    try:
        tally.start()
        for plan in plans:
            if codes.shape[1] != plan.tokens_before:
                raise ValueError(f"window plan expects {plan.tokens_before} codes, have {codes.shape[1]}")
            job = window_job(prior, plan, codes, labels, upper_codes)
            new = sample_window(prior, job, seeds, settings, max_batch_size, tally)
            codes = torch.cat([codes, new.to(codes.device)], dim=1)
            if on_window is not None:
                on_window(plan, codes)
    except Cancelled as stop:
        raise Cancelled(str(stop), codes) from None
    return codes


def ancestral(prior, total: int, **kwargs) -> torch.Tensor:
    """A level from nothing: `windowed` with no codes (pass n_samples or seeds)."""
    return windowed(prior, total, codes=None, **kwargs)


def primed(prior, prompt_codes: torch.Tensor, total: int, **kwargs) -> torch.Tensor:
    """A level continued from the codes of real audio (VQ-VAE encoded), up to `total` codes."""
    return windowed(prior, total, codes=prompt_codes, **kwargs)


@dataclass
class ContinueResult:
    codes: torch.Tensor  # (N, n_new) new codes
    start: int  # where the window started
    window_codes: torch.Tensor  # (N, tokens in the window) prefix + new codes, as the state holds them
    resume: Resume

    def select(self, index) -> ContinueResult:
        """Keep the branches the user picked (e.g. `[b]`), to extend them next."""
        index = torch.as_tensor(index, dtype=torch.long).view(-1)
        return ContinueResult(
            self.codes[index], self.start, self.window_codes[index], self.resume.select(index)
        )


def _reusable(previous: ContinueResult | None, start: int, codes_so_far: torch.Tensor, n: int) -> bool:
    if previous is None or previous.start != start or previous.resume.batch_size not in (1, n):
        return False
    window = codes_so_far[:, start:]
    held = previous.window_codes
    return held.shape[1] == window.shape[1] and bool((held.to(window.device) == window).all())


def continue_codes(
    prior,
    codes_so_far: torch.Tensor,
    n_new: int,
    *,
    seeds: Seeds,
    labels: Sequence[Label] | None = None,
    upper_codes: torch.Tensor | None = None,
    settings: SamplingSettings | None = None,
    progress: Progress | None = None,
    previous: ContinueResult | None = None,
) -> ContinueResult:
    """Add n_new codes (<= n_ctx) after codes_so_far (N or 1 rows) with the reference's partial window.

    While the song fits in one context the window starts at 0; after that it slides so that it ends at
    the new end, and its labels' offset and lyric window follow. When `previous` (the last call's
    result, or its `.select`) holds exactly this window, its cache is reused instead of recomputed.
    """
    settings = settings or SamplingSettings()
    cfg = prior.config
    have = codes_so_far.shape[1]
    start, _ = sample_partial_window(have, n_new, cfg.n_ctx)
    n = count_samples(seeds, codes_so_far, labels, None)
    if codes_so_far.shape[0] == 1 < n:
        # Shared history: identical rows are detected by the sampler, which prefills once and forks.
        codes_so_far = codes_so_far.expand(n, -1)
    if _reusable(previous, start, codes_so_far, n):
        result = sample(prior, None, n_new, seeds=seeds, settings=settings, progress=progress,
                        resume=previous.resume)  # fmt: skip
        window = previous.window_codes.to(result.codes.device).expand(n, -1)
    else:
        plan = partial_window(cfg.level, have, n_new, cfg.n_ctx)
        job = window_job(prior, plan, codes_so_far, labels, upper_codes)
        result = sample(prior, job.labels, n_new, seeds=seeds, upper_tokens=job.upper, prefix=job.prefix,
                        settings=settings, progress=progress, blend=job.blend)  # fmt: skip
        window = job.prefix.to(result.codes.device).expand(n, -1)
    window_codes = torch.cat([window, result.codes], dim=1)
    return ContinueResult(result.codes, start, window_codes, result.resume)
