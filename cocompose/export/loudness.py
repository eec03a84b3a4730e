"""Loudness normalisation: integrated loudness per ITU-R BS.1770-4, gain to a target, true-peak safety.

Measured with pyloudnorm (K-weighting, 400 ms blocks with 75 % overlap, -70 LUFS absolute gate and
-10 LU relative gate). The gain that reaches the target can push peaks over full scale, so the result
goes through the true-peak limiter in `peak.py`; limiting lowers loudness a little, so the gain is
corrected and the pair repeated a few times until the target is met or cannot be met.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm

from cocompose.export.peak import limit_true_peak

GATING_BLOCK_S = 0.400  # BS.1770 cannot measure anything shorter than one gating block
TOLERANCE_LU = 0.1
MAX_MAKEUP_DB = 3.0


@dataclass(frozen=True)
class LoudnessReport:
    integrated_lufs: float | None  # of the processed audio; None where BS.1770 leaves it undefined
    gain_db: float  # static gain applied (0 when not normalised)
    limiter_reduction_db: float  # deepest gain reduction by the true-peak limiter; 0 when it did nothing
    notes: tuple[str, ...] = ()


def integrated_lufs(audio: np.ndarray, rate: int) -> float | None:
    """Integrated loudness of `audio` (T, C) in LUFS; None if too short, silent or under the gate."""
    if audio.shape[0] < GATING_BLOCK_S * rate or not np.any(audio):
        return None
    # pyloudnorm filters in float64 and works on a copy; it returns -inf when every block is gated out.
    lufs = float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)))
    return lufs if np.isfinite(lufs) else None


def normalise(
    audio: np.ndarray, rate: int, target_lufs: float | None, ceiling_db: float | None
) -> tuple[np.ndarray, LoudnessReport]:
    """`audio` (T, C) at `target_lufs` (None: left as is) with true peaks at most `ceiling_db` (None: off)."""
    measured = integrated_lufs(audio, rate)
    notes: list[str] = []
    gain_db = 0.0
    if target_lufs is not None and measured is None:
        notes.append(
            "loudness is undefined (silent, under the -70 LUFS gate, or shorter than 0.4 s), "
            "so the track was exported without loudness normalisation"
        )
    elif target_lufs is not None:
        gain_db = target_lufs - measured
    first_gain_db = gain_db
    while True:
        processed = (audio * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
        reduction_db = 0.0
        if ceiling_db is not None:
            processed, reduction_db = limit_true_peak(processed, rate, ceiling_db)
        measured = integrated_lufs(processed, rate)
        if target_lufs is None or measured is None or reduction_db == 0.0:
            break
        shortfall = target_lufs - measured
        # The limiter took some loudness away; ask for that much more gain and limit again, but only up
        # to MAX_MAKEUP_DB: beyond that the limiter would be squashing the music, not catching peaks.
        next_gain_db = min(gain_db + shortfall, first_gain_db + MAX_MAKEUP_DB)
        if abs(shortfall) <= TOLERANCE_LU or next_gain_db <= gain_db + 0.01:
            break
        gain_db = next_gain_db
    if target_lufs is not None and measured is not None and abs(measured - target_lufs) > TOLERANCE_LU:
        notes.append(
            f"reached {measured:.1f} LUFS, not {target_lufs:.1f}: the true-peak ceiling of {ceiling_db} dBTP "
            "would need more limiting than is sensible"
        )
    if reduction_db > 0.0:
        notes.append(f"true-peak limiter reduced peaks by up to {reduction_db:.1f} dB")
    report = LoudnessReport(measured, gain_db, reduction_db, tuple(notes))
    return processed, report
