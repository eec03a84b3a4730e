"""True-peak measurement and a look-ahead true-peak limiter, so a normalised track never clips.

True peak follows the idea of ITU-R BS.1770-4 Annex 2: oversample 4x and take the largest magnitude, which
catches the overs between samples that a DAC or a lossy decoder reconstructs. soxr's very-high-quality
resampler stands in for the Annex's 48-tap interpolator (it is at least as accurate).

The limiter is offline, so its "look-ahead" is just indexing forward: the gain needed at every sample is
known before it is applied, and the smoothed gain is built to be at or below it everywhere.
"""

from __future__ import annotations

import numpy as np
import soxr

OVERSAMPLING = 4
# Context on each side of a block when oversampling in blocks, so soxr's filter has settled at the edges.
BLOCK_FRAMES = 1 << 16
BLOCK_CONTEXT = 2048
RAMP_S = 0.010  # gain ramps down over 10 ms before an over and back up over 10 ms after it
HOLD_S = 0.040  # longer than a bass period, so the gain does not follow (and distort) the waveform


def to_db(linear: float) -> float:
    return float(20.0 * np.log10(linear)) if linear > 0.0 else float("-inf")


def true_peak_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """(T,) largest oversampled magnitude in each sample period, over all channels of `audio` (T, C)."""
    n_frames = audio.shape[0]
    envelope = np.empty(n_frames, dtype=np.float32)
    for start in range(0, n_frames, BLOCK_FRAMES):
        stop = min(start + BLOCK_FRAMES, n_frames)
        lead = min(BLOCK_CONTEXT, start)
        tail = min(BLOCK_CONTEXT, n_frames - stop)
        block = audio[start - lead : stop + tail]
        upsampled = soxr.resample(block, rate, rate * OVERSAMPLING, quality="VHQ")  # (4T', C)
        core = upsampled[lead * OVERSAMPLING : (lead + stop - start) * OVERSAMPLING]
        # (T'', 4, C): the 4 sub-samples of each original sample period, then the largest over them all.
        per_sample = np.abs(core).reshape(stop - start, OVERSAMPLING, -1).max(axis=(1, 2))
        # The original samples themselves are peaks too (soxr can ring a hair below them).
        envelope[start:stop] = np.maximum(per_sample, np.abs(audio[start:stop]).max(axis=1))
    return envelope


def true_peak_db(audio: np.ndarray, rate: int) -> float:
    """Largest true peak of `audio` (T, C) in dBTP; -inf for silence."""
    if audio.shape[0] == 0:
        return float("-inf")
    return to_db(float(true_peak_envelope(audio, rate).max()))


def sliding_min(values: np.ndarray, width: int) -> np.ndarray:
    """out[i] = min(values[i : i + width]), padded past the end with +inf; O(T) however wide.

    Van Herk / Gil-Werman: cut into blocks of `width`; a window then spans at most two blocks, so it is
    the suffix-minimum of the first block at i and the prefix-minimum of the second at i + width - 1.
    """
    n = values.shape[0]
    n_blocks = -(-(n + width) // width)
    padded = np.full(n_blocks * width, np.inf, dtype=np.float64)
    padded[:n] = values
    blocks = padded.reshape(n_blocks, width)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n])


def limiter_gain(envelope: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """(T,) gain <= ceiling / envelope at every sample, ramping smoothly instead of jumping.

    g_min[k] is the smallest gain needed anywhere in [k - hold, k + ramp - 1]; the gain at n is the mean
    of g_min over [n - ramp + 1, n]. Each of those windows contains n, so the mean is <= what n needs.
    """
    needed = np.minimum(1.0, ceiling / np.maximum(envelope.astype(np.float64), 1e-12))
    ramp = max(1, round(RAMP_S * rate))
    hold = round(HOLD_S * rate)
    padded = np.concatenate([np.ones(hold), needed])  # before the track nothing needs reducing
    g_min = sliding_min(padded, hold + ramp)[: needed.shape[0]]
    # Mean over the last `ramp` values; at the start, the first value stands in for the missing ones
    # (it is a minimum over a window that covers those first samples, so it is low enough for them).
    head = np.full(ramp - 1, g_min[0]) if g_min.shape[0] else np.zeros(0)
    cumulative = np.concatenate([[0.0], np.cumsum(np.concatenate([head, g_min]))])
    return (cumulative[ramp:] - cumulative[:-ramp]) / ramp


def limit_true_peak(audio: np.ndarray, rate: int, ceiling_db: float) -> tuple[np.ndarray, float]:
    """`audio` (T, C) with its true peak brought to at most `ceiling_db`; also the largest reduction in dB."""
    ceiling = 10.0 ** (ceiling_db / 20.0)
    envelope = true_peak_envelope(audio, rate)
    if envelope.shape[0] == 0 or envelope.max() <= ceiling:
        return audio, 0.0
    gain = limiter_gain(envelope, ceiling, rate)
    limited = (audio * gain[:, None]).astype(np.float32)
    # A gain that moves changes the waveform a little, so the peaks between samples can shift; a final
    # static trim makes the guarantee exact rather than almost.
    peak = float(true_peak_envelope(limited, rate).max())
    if peak > ceiling:
        limited = (limited * (ceiling / peak)).astype(np.float32)
    return limited, -to_db(float(gain.min()))
