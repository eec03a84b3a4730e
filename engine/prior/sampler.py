"""Sampling N branches of one window of a prior: prefix prefill, seeded draws, cancellation, resumption.

One call samples `n_new` music codes after an optional prefix, inside one context window (prefix +
new <= n_ctx). The window drivers (`engine.sampling`) decide which windows to sample.

Randomness. By default every branch draws from its own `torch.Generator` (CPU), so branch i depends
only on its seed, its conditioning and its prefix: the same seed gives the same codes alone or as any
row of any batch. `seeds=REFERENCE_RNG` instead reproduces the reference: one draw per step for the
whole batch from torch's global RNG (seed it with `torch.manual_seed`), which is what the fixture
recorded; those tokens depend on batch composition and call order.

1b_lyrics. Its single output layer covers lyric ids and music codes. The reference samples over all
of them, feeds a lyric id drawn at a music position back as-is, and returns it as code 0 (FACTS 4.4).
We deliberately sample over the music columns only; `SamplingSettings(reference_quirks=True)`
restores the reference behaviour exactly.

Label guidance (not in the reference; off by default). A small prior hears its artist and genre only
through the start token, and the further a window runs from it the weaker the label's pull. With
`guidance = g > 0` every branch runs beside a contrast stream with the same prefix, timing and lyrics but
a neutral start token (the mean artist and genre embeddings), and tokens are drawn from
`logits + g * (logits - contrast logits)`: what this artist and genre add to a song, made g + 1 times as
strong (classifier-free guidance with the table's mean as the unconditional model). It costs a second
stream per branch. Priors without labels (most upsamplers) ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from engine.prior.decode_state import DecodeState
from engine.prior.sampling import reference_order_sample, sample_tokens_per_branch

if TYPE_CHECKING:  # model.py imports this module for JukeboxPrior.sample
    from engine.prior.model import JukeboxPrior

REFERENCE_RNG: Literal["reference"] = "reference"
MAX_GUIDANCE = 10.0  # far past any useful strength: beyond a few, the draws collapse onto few codes

Progress = Callable[[int, int], bool | None]
Seeds = Sequence[int] | Sequence[torch.Generator] | Literal["reference"]


@dataclass(frozen=True)
class SamplingSettings:
    """How tokens are drawn. chunk_size: prefix tokens pushed through the cache per forward call
    (bounds peak memory, not results). reference_quirks: 1b_lyrics may draw lyric ids (see module doc)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    chunk_size: int = 32
    reference_quirks: bool = False
    guidance: float = 0.0  # label guidance strength g (module doc); 0 samples the model as it is

    def __post_init__(self) -> None:
        if self.temperature <= 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ValueError(f"guidance must lie in [0, {MAX_GUIDANCE:g}], got {self.guidance}")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"need top_k >= 0 and top_p in [0, 1], got {self.top_k}, {self.top_p}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")


class Cancelled(Exception):
    """A progress callback asked to stop. `codes` holds what was finished (sampler: the window's tokens
    drawn so far; drivers: the level's codes up to the last finished window), or None."""

    def __init__(self, message: str = "sampling cancelled", codes: torch.Tensor | None = None):
        super().__init__(message)
        self.codes = codes


def report(progress: Progress | None, done: int, total: int) -> None:
    """Call the progress callback; a False return (not None) cancels."""
    if progress is not None and progress(done, total) is False:
        raise Cancelled(f"cancelled after {done} of {total}")


@dataclass
class Resume:
    """Where a window stopped: `state` has every code fed except `pending` (N, k), the k <= 1 codes
    drawn last (feeding them is deferred so a full window never needs an extra position). `contrast`:
    the neutral-label streams of a guided window, fed the same codes, or None."""

    state: DecodeState
    pending: torch.Tensor
    contrast: DecodeState | None = None

    @property
    def batch_size(self) -> int:
        return self.state.batch_size

    @property
    def window_tokens(self) -> int:
        """Music codes of the window so far, fed or pending."""
        return self.state.music_tokens + self.pending.shape[1]

    def select(self, index: torch.Tensor | Sequence[int]) -> Resume:
        """Keep, reorder or repeat branches (e.g. `[b]` to continue from the branch the user chose)."""
        index = torch.as_tensor(index, dtype=torch.long).view(-1)
        pending = self.pending.index_select(0, index.to(self.pending.device))
        contrast = None if self.contrast is None else self.contrast.select(index)
        return Resume(self.state.select(index), pending, contrast)


@dataclass
class SampleResult:
    codes: torch.Tensor  # (N, n_new) new music codes
    resume: Resume  # pass back as `resume=` to keep extending this window without recomputing it


def branch_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per branch. Draws happen on the CPU so a seed means the same on any device."""
    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


def _rows_equal(t: torch.Tensor | None) -> bool:
    return t is None or t.shape[0] == 1 or bool((t == t[:1]).all())


def _row0(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t[:1]


def _expand(t: torch.Tensor | None, n: int, name: str) -> torch.Tensor | None:
    if t is None or t.shape[0] == n:
        return t
    if t.shape[0] != 1:
        raise ValueError(f"{name} has {t.shape[0]} rows; give 1 (shared) or one per branch ({n})")
    return t.expand(n, *t.shape[1:])


def push(prior: JukeboxPrior, state: DecodeState, codes: torch.Tensor, chunk_size: int) -> None:
    """Feed (N, P) codes through the cache, chunk_size positions per forward call."""
    for a in range(0, codes.shape[1], chunk_size):
        prior.extend(state, codes[:, a : a + chunk_size])


def prefill(
    prior: JukeboxPrior,
    labels: torch.Tensor | None,
    upper_tokens: torch.Tensor | None,
    prefix: torch.Tensor | None,
    n_branches: int,
    chunk_size: int,
    blend: torch.Tensor | None = None,
    neutral: bool = False,
) -> DecodeState:
    """Start a window for n_branches streams and push the prefix (blend: optional artist blend rows;
    neutral: the contrast streams of label guidance).

    When every input is shared (one row, or identical rows) the conditioning and the prefix run once at
    batch 1 and the cache is forked, instead of computing the same prefix n_branches times.
    """
    inputs = (labels, upper_tokens, prefix)
    device = prior.prior.x_emb.weight.device
    labels, upper_tokens, prefix = (None if t is None else torch.as_tensor(t).to(device) for t in inputs)
    shared = n_branches > 1 and all(_rows_equal(t) for t in (labels, upper_tokens, prefix, blend))
    if shared:
        labels, upper_tokens, prefix = _row0(labels), _row0(upper_tokens), _row0(prefix)
        blend = _row0(blend)
    rows = 1 if shared else n_branches
    labels = _expand(labels, rows, "labels")
    upper_tokens = _expand(upper_tokens, rows, "upper_tokens")
    prefix = _expand(prefix, rows, "prefix")
    blend = _expand(blend, rows, "blend")
    state = prior.start(labels, upper_tokens, batch_size=rows, blend=blend, neutral=neutral)
    if prefix is not None and prefix.shape[1]:
        push(prior, state, prefix, chunk_size)
    return state.fork(n_branches) if shared else state


def _batch_size(seeds: Seeds, tensors: Sequence[torch.Tensor | None], resume: Resume | None) -> int:
    if seeds != REFERENCE_RNG:
        return len(seeds)
    if resume is not None:
        return resume.batch_size
    rows = [t.shape[0] for t in tensors if t is not None]
    if not rows:
        raise ValueError("with REFERENCE_RNG give labels, upper_tokens or a prefix to size the batch")
    return max(rows)


def _generators(seeds: Seeds) -> list[torch.Generator] | None:
    if seeds == REFERENCE_RNG:
        return None
    if all(isinstance(s, torch.Generator) for s in seeds):
        return list(seeds)
    return branch_generators(seeds)


def draw(logits: torch.Tensor, generators: list[torch.Generator] | None, settings: SamplingSettings):
    """(N, bins) logits -> (N,) ids with the configured temperature and filters."""
    t, k, p = settings.temperature, settings.top_k, settings.top_p
    if generators is None:
        return reference_order_sample(logits, t, k, p)
    return sample_tokens_per_branch(logits.float().cpu(), generators, t, k, p).to(logits.device)


def guide(logits: torch.Tensor, neutral: torch.Tensor, strength: float) -> torch.Tensor:
    """Label guidance on one step's logits, in float32: each stream's log-softmax moved `strength` times
    further from the neutral stream's. Log-softmax first, so the two streams' arbitrary logit offsets
    cancel; strength 0 gives the conditioned distribution itself."""
    own = torch.log_softmax(logits.float(), dim=-1)
    return own + strength * (own - torch.log_softmax(neutral.float(), dim=-1))


def sample(
    prior: JukeboxPrior,
    labels: torch.Tensor | None,
    n_new: int,
    *,
    seeds: Seeds,
    upper_tokens: torch.Tensor | None = None,
    prefix: torch.Tensor | None = None,
    settings: SamplingSettings | None = None,
    progress: Progress | None = None,
    resume: Resume | None = None,
    blend: torch.Tensor | None = None,
) -> SampleResult:
    """Sample n_new codes for N = len(seeds) branches; returns them (N, n_new) and a Resume.

    labels (N or 1, label_len), upper_tokens (N or 1, n_ctx / cond_downsample) for upsamplers, prefix
    (N or 1, P) codes already in the window, blend (N or 1, 2) artist blend rows [other artist id,
    weight] (`engine.prior.labels.blend_rows`). With `resume` (a previous result's, or `.select`ed from it)
    the window continues: labels/upper_tokens/blend are ignored, `prefix` is pushed after the pending codes,
    and a batch-1 resume is forked into N branches. Pass a previous call's generators as `seeds` to
    continue their random streams (then sampling 24 + 24 equals sampling 48 at once).
    progress(done, total) is called before the first and after every drawn token; returning False
    raises Cancelled carrying the tokens drawn so far.
    """
    settings = settings or SamplingSettings()
    cfg = prior.config
    n = _batch_size(seeds, (labels, upper_tokens, prefix), resume)
    generators = _generators(seeds)
    if generators is not None and len(generators) != n:
        raise ValueError(f"{len(generators)} seeds for {n} branches")
    if n_new < 1:
        raise ValueError(f"n_new must be >= 1, got {n_new}")
    guided = settings.guidance > 0 and cfg.labels is not None
    report(progress, 0, n_new)
    if resume is None:
        have = 0 if prefix is None else prefix.shape[1]
        if have + n_new > cfg.n_ctx:
            raise ValueError(f"prefix {have} + {n_new} new codes exceed the window of {cfg.n_ctx}")
        state = prefill(prior, labels, upper_tokens, prefix, n, settings.chunk_size, blend)
        contrast, extra = None, None
        if guided:
            contrast = prefill(
                prior, labels, upper_tokens, prefix, n, settings.chunk_size, blend, neutral=True
            )
    else:
        if guided and resume.contrast is None:
            raise ValueError("this window was sampled without label guidance; continue it without, too")
        extra = (
            resume.pending if prefix is None else torch.cat([resume.pending, prefix.to(resume.pending)], 1)
        )
        if resume.state.music_tokens + extra.shape[1] + n_new > cfg.n_ctx:
            raise ValueError(f"resuming would run past the window of {cfg.n_ctx} codes")
        state, contrast = resume.state, resume.contrast if guided else None
        if state.batch_size == 1 and n > 1:
            state, extra = state.fork(n), extra.expand(n, -1)
            contrast = None if contrast is None else contrast.fork(n)
        elif state.batch_size != n:
            raise ValueError(f"resume has {state.batch_size} branches, asked for {n}; use Resume.select")
        elif contrast is None:  # never mutate the caller's resume state in place (concat copies)
            state = state.select(torch.arange(n))
    # A guided window steps its conditioned and neutral streams as one batch: rows [0, n) and [n, 2n).
    streams = state if contrast is None else DecodeState.concat([state, contrast])
    copies = streams.batch_size // n
    if extra is not None and extra.shape[1]:
        push(prior, streams, extra.repeat(copies, 1), settings.chunk_size)
    # Music columns only, unless the reference's joint-vocabulary draw is wanted (1b_lyrics quirk).
    joint = settings.reference_quirks and cfg.vocab_shift > 0
    feed = prior.extend_raw if joint else prior.extend
    drawn: list[torch.Tensor] = []
    last = None
    for j in range(n_new):
        if last is not None:
            feed(streams, last.view(n, 1).repeat(copies, 1))
        logits = streams.next_logits if joint else prior.music_logits(streams.next_logits)
        if contrast is not None:
            logits = guide(logits[:n], logits[n:], settings.guidance)
        last = draw(logits, generators, settings)
        drawn.append(prior.codes_from_ids(last) if joint else last)
        try:
            report(progress, j + 1, n_new)
        except Cancelled as stop:
            raise Cancelled(str(stop), torch.stack(drawn, 1)) from None
    codes = torch.stack(drawn, dim=1)
    if contrast is not None:
        rows = torch.arange(2 * n, device=streams.next_logits.device)
        state, contrast = streams.select(rows[:n]), streams.select(rows[n:])
    # A lyric id drawn last stays pending as code 0: the reference primes later windows with codes.
    return SampleResult(codes, Resume(state, codes[:, -1:], contrast))
