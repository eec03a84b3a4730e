"""Timing-signal bins of the top priors (pure functions, no weights).

A top prior embeds three quantities per window: the song's total length, the absolute position of
each token, and its relative position (absolute / total). Each is binned into t_bins buckets over a
fixed range. Everything is computed in float32, exactly as the reference does, so bins at the edges
(large offsets above 2**24 samples lose integer precision) land where the checkpoints expect them.
"""

from __future__ import annotations

import torch


def _interpolate(start: torch.Tensor, end: torch.Tensor, n_time: int) -> torch.Tensor:
    """(N, 1) start/end -> (N, n_time) positions start + (end - start) * i / n_time, float32."""
    steps = torch.arange(0, n_time, dtype=torch.float32, device=start.device).view(1, n_time) / n_time
    return start + (end - start) * steps


def _to_bins(position: torch.Tensor, low: float, high: float, t_bins: int) -> torch.Tensor:
    """floor(t_bins * (p - low) / (high - low)): [low, high) -> 0..t_bins-1."""
    normalised = (position - low) / (high - low)
    return (t_bins * normalised).floor().long()


def _check_range(name: str, values: torch.Tensor, low: float, high: float, inclusive_high: bool) -> None:
    above = values > high if inclusive_high else values >= high
    if bool((values < low).any() or above.any()):
        bracket = "]" if inclusive_high else ")"
        raise ValueError(
            f"timing label out of range: {name} must lie in [{low:g}, {high:g}{bracket}, "
            f"got {values.flatten().tolist()[:4]}"
        )


def timing_bins(
    total_length: torch.Tensor,
    offset: torch.Tensor,
    sample_length: torch.Tensor | int,
    *,
    n_time: int,
    t_bins: int,
    sr: float,
    min_duration: float,
    max_duration: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bins for one window per item.

    total_length, offset: (N,) or (N, 1) int64 sample counts; sample_length: the window's length in
    samples. Returns int64 (total (N, 1), absolute (N, n_time), relative (N, n_time)).
    Raises ValueError where the reference would fail an assertion (e.g. a song shorter than
    min_duration, or a window ending after max_duration).
    """
    total = torch.as_tensor(total_length).view(-1, 1)
    start = torch.as_tensor(offset).view(-1, 1)
    end = start + torch.as_tensor(sample_length).view(-1, 1)
    total_f, start_f, end_f = total.float(), start.float(), end.float()

    total_lo, total_hi = min_duration * sr, max_duration * sr
    _check_range("total_length", total_f, total_lo, total_hi, inclusive_high=False)
    total_bins = _to_bins(total_f, total_lo, total_hi, t_bins)

    abs_hi = max_duration * sr
    _check_range("offset", start_f, 0.0, abs_hi, inclusive_high=False)
    _check_range("offset + sample_length", end_f, 0.0, abs_hi, inclusive_high=True)
    absolute_bins = _to_bins(_interpolate(start_f, end_f, n_time), 0.0, abs_hi, t_bins)

    rel_start = start_f / total_f
    # A window may run past the end of the song: its relative end is clamped to 1.
    rel_end = (end_f / total_f).clamp(0.0, 1.0)
    _check_range("offset / total_length", rel_start, 0.0, 1.0, inclusive_high=False)
    relative_bins = _to_bins(_interpolate(rel_start, rel_end, n_time), 0.0, 1.0, t_bins)
    return total_bins, absolute_bins, relative_bins
