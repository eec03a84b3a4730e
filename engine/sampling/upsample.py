"""Upsampling top-level codes to the finer levels (the reference's `upsample`): each upsampler samples
its whole level window by window, conditioned on the codes of the level above under each window."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.prior.labels import Label
from engine.prior.sampler import Progress, SamplingSettings, Seeds
from engine.prior.windows import split_batch_sizes
from engine.sampling.drivers import OnWindow, count_samples, plan_level, run_plans
from engine.sampling.progress import ProgressTally


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
    labels_per_level: Sequence[Sequence[Label] | None],
    *,
    seeds: Seeds,
    hop_fraction: Sequence[float] | float = 0.5,
    settings: Sequence[SamplingSettings] | SamplingSettings | None = None,
    codes: Sequence[torch.Tensor | None] | None = None,
    max_batch_size: int | None = None,
    progress: Progress | None = None,
    on_window: OnWindow | None = None,
) -> list[torch.Tensor]:
    """Sample every level below the top; returns the codes per level, index = level (0 finest).

    upsamplers[L] is the level-L upsampler (levels 0 .. top-1), labels_per_level[L] its labels (they
    differ per level: each prior has its own label vector). codes[L]: already finished level-L codes to
    resume from (a whole level, or its first windows). Levels run from the top down; progress counts
    the draws of every window of every level, planned up front. Cancelled carries the finished codes
    of the level that was running.
    """
    levels = len(upsamplers)
    for level, up in enumerate(upsamplers):
        if up.config.level != level or up.config.conditioner is None:
            raise ValueError(f"upsamplers[{level}] must be the level-{level} upsampler")
    hops = _per_level(hop_fraction, levels, "hop_fraction")
    level_settings = _per_level(settings or SamplingSettings(), levels, "settings")
    codes = list(codes) if codes is not None else [None] * levels
    n = count_samples(seeds, top_codes, None, None)
    totals = level_lengths(upsamplers, top_codes.shape[1])
    device = top_codes.device
    have = [torch.zeros(n, 0, dtype=torch.long, device=device) if c is None else c for c in codes]
    plans = [plan_level(upsamplers[lv], totals[lv], have[lv].shape[1], hops[lv]) for lv in range(levels)]
    splits = len(split_batch_sizes(n, max_batch_size or n))
    tally = ProgressTally(progress, splits * sum(p.new_tokens for level in plans for p in level))
    upper = top_codes
    for level in reversed(range(levels)):
        have[level] = run_plans(
            upsamplers[level],
            plans[level],
            have[level],
            labels_per_level[level],
            upper,
            seeds,
            level_settings[level],
            max_batch_size,
            tally,
            on_window,
        )
        upper = have[level]
    return have
