"""Drivers that sample whole songs with a prior, window by window, the way the reference does.

`engine.prior.sampler.sample` samples one window; the drivers here decide which windows to sample
(the reference's `sample_level`, `sample_partial_window`, `upsample`) and compute lyric alignments.
Windows are the unit of progress and resumption: every driver accepts codes that are already
finished and continues with the next window.
"""

from engine.sampling.alignment import get_alignment
from engine.sampling.drivers import (
    ContinueResult,
    WindowJob,
    ancestral,
    continue_codes,
    plan_level,
    primed,
    window_job,
    windowed,
)
from engine.sampling.upsample import level_lengths, upsample

__all__ = [
    "ContinueResult",
    "WindowJob",
    "ancestral",
    "continue_codes",
    "get_alignment",
    "level_lengths",
    "plan_level",
    "primed",
    "upsample",
    "window_job",
    "windowed",
]
