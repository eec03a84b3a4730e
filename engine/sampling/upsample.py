"""Upsampling top-level codes to the finer levels (the reference's `upsample`): each upsampler samples
its whole level window by window, conditioned on the codes of the level above under each window.

Labels that change along the song. The reference gives every upsampler window its own label vector
(offset moved to the window). Here a level's labels may also change partway through: a `LabelTrack`
lists (first audio sample, labels) changes, e.g. an artist swap at a take inside the rendered range.
Each window is sampled with the labels that cover the most of its *new* codes (the ones it adds; its
prefix was sampled before); on a tie the earlier labels win. A window that does not straddle a change
therefore gets exactly the labels in force where it lies, and a straddling window follows its majority,
so a change takes effect within half a window of where it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch

from engine.prior.labels import Label
from engine.prior.sampler import Progress, SamplingSettings, Seeds
from engine.prior.windows import WindowPlan, split_batch_sizes
from engine.sampling.drivers import OnWindow, count_samples, plan_level, run_plans
from engine.sampling.progress import ProgressTally


@dataclass(frozen=True)
class LabelTrack:
    """Labels of one level along the rendered stretch: `changes[i] = (at, labels)` holds from audio
    sample `at` (counted from the start of the upsampled codes) up to the next change. The first change
    is at 0; `labels` are per sample (or one shared), as `windowed` takes them."""

    changes: tuple[tuple[int, Sequence[Label]], ...]

    def __post_init__(self) -> None:
        ats = [at for at, _ in self.changes]
        if not ats or ats[0] != 0 or any(b <= a for a, b in pairwise(ats)):
            raise ValueError(f"label changes must start at sample 0 and increase, got {ats}")

    @classmethod
    def constant(cls, labels: Sequence[Label]) -> LabelTrack:
        return cls(((0, labels),))

    def labels_for(self, plan: WindowPlan, raw_to_tokens: int) -> Sequence[Label]:
        """The labels covering the most of the window's new codes (ties: the earlier)."""
        first = (plan.start + plan.prefix_tokens) * raw_to_tokens
        last = first + plan.new_tokens * raw_to_tokens
        bounds = [at for at, _ in self.changes[1:]] + [last]
        best, covered = self.changes[0][1], -1
        for (at, labels), end in zip(self.changes, bounds, strict=True):
            overlap = min(end, last) - max(at, first)
            if overlap > covered:
                best, covered = labels, overlap
        return best


LevelLabels = Sequence[Label] | LabelTrack | None


def label_groups(
    plans: Sequence[WindowPlan], labels: LevelLabels, raw_to_tokens: int
) -> list[tuple[Sequence[Label] | None, list[WindowPlan]]]:
    """Consecutive windows of one level grouped by the labels each is sampled with (see module doc)."""
    if not isinstance(labels, LabelTrack):
        return [(labels, list(plans))] if plans else []
    groups: list[tuple[Sequence[Label] | None, list[WindowPlan]]] = []
    for plan in plans:
        chosen = labels.labels_for(plan, raw_to_tokens)
        if groups and groups[-1][0] is chosen:
            groups[-1][1].append(plan)
        else:
            groups.append((chosen, [plan]))
    return groups


def _per_level(value, levels: int, name: str) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str | SamplingSettings):
        if len(value) < levels:
            raise ValueError(f"{name} needs one entry per level (at least {levels}), got {len(value)}")
        return list(value)
    return [value] * levels


def level_lengths(upsamplers: Sequence, top_tokens: int) -> list[int]:
    """Codes per level for `top_tokens` codes at the top, from each upsampler's own hop lengths."""
    highest = upsamplers[-1].config
    sample_length = top_tokens * highest.raw_to_tokens * highest.cond_downsample
    return [sample_length // up.config.raw_to_tokens for up in upsamplers]


def upsample(
    upsamplers: Sequence,
    top_codes: torch.Tensor,
    labels_per_level: Sequence[LevelLabels],
    *,
    seeds: Seeds,
    hop_fraction: Sequence[float] | float = 0.5,
    lookahead_fraction: Sequence[float] | float = 0.0,
    settings: Sequence[SamplingSettings] | SamplingSettings | None = None,
    codes: Sequence[torch.Tensor | None] | None = None,
    max_batch_size: int | None = None,
    progress: Progress | None = None,
    on_window: OnWindow | None = None,
) -> list[torch.Tensor]:
    """Sample every level below the top; returns the codes per level, index = level (0 finest).

    upsamplers[L] is the level-L upsampler (levels 0 .. top-1), labels_per_level[L] its labels (they
    differ per level: each prior has its own label vector), or a `LabelTrack` when they change along
    the stretch. codes[L]: already finished level-L codes to
    resume from (a whole level, or its first windows). Levels run from the top down; progress counts
    the draws of every window of every level, planned up front. Cancelled carries the finished codes
    of the level that was running. lookahead_fraction: per level, the share of each window left for the
    next one to sample (`plan_level`'s lookahead; 0 as in the reference).
    """
    levels = len(upsamplers)
    for level, up in enumerate(upsamplers):
        if up.config.level != level or up.config.conditioner is None:
            raise ValueError(f"upsamplers[{level}] must be the level-{level} upsampler")
    hops = _per_level(hop_fraction, levels, "hop_fraction")
    ahead = _per_level(lookahead_fraction, levels, "lookahead_fraction")
    lookaheads = [int(ahead[lv] * upsamplers[lv].config.n_ctx) for lv in range(levels)]
    level_settings = _per_level(settings or SamplingSettings(), levels, "settings")
    codes = list(codes) if codes is not None else [None] * levels
    n = count_samples(seeds, top_codes, None, None)
    totals = level_lengths(upsamplers, top_codes.shape[1])
    device = top_codes.device
    have = [torch.zeros(n, 0, dtype=torch.long, device=device) if c is None else c for c in codes]
    plans = [
        plan_level(upsamplers[lv], totals[lv], have[lv].shape[1], hops[lv], lookaheads[lv])
        for lv in range(levels)
    ]
    splits = len(split_batch_sizes(n, max_batch_size or n))
    tally = ProgressTally(progress, splits * sum(p.new_tokens for level in plans for p in level))
    upper = top_codes
    for level in reversed(range(levels)):
        up = upsamplers[level]
        for labels, group in label_groups(plans[level], labels_per_level[level], up.config.raw_to_tokens):
            have[level] = run_plans(
                up, group, have[level], labels, upper, seeds, level_settings[level], max_batch_size,
                tally, on_window,
            )  # fmt: skip
        upper = have[level]
    return have
