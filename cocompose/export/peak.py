"""True-peak measurement and a look-ahead true-peak limiter, so a normalised track never clips.

True peak follows ITU-R BS.1770-4 Annex 2 in spirit: oversample and take the largest magnitude, which
catches the overs between samples that a DAC or a lossy decoder reconstructs. The oversampling here is
ideal band-limited interpolation (zero-filled FFT), done in overlapping blocks, and 8x rather than the
Annex's 4x: a filter like soxr's or the Annex's stops short of Nyquist and a 4x grid can miss a
near-Nyquist peak by up to 0.7 dB, so either would let a sharp click through a -1 dBTP ceiling.

The limiter is offline, so its "look-ahead" is just indexing forward: the gain needed at every sample is
known before it is applied, and the smoothed gain is built to be at or below it everywhere.
"""

from __future__ import annotations

import numpy as np

OVERSAMPLING = 8  # worst-case under-read of a full-scale peak: 1 - cos(pi / 16), 0.17 dB
BLOCK_FRAMES = 1 << 15
# Samples of real signal on each side of a block, faded to zero at the outer ends, so the FFT sees no
# step where it wraps round; the interpolation error from the cut-off context falls off as 1/distance.
BLOCK_CONTEXT = 4096
RAMP_S = 0.010  # gain ramps down over 10 ms before an over and back up over 10 ms after it
HOLD_S = 0.040  # longer than a bass period, so the gain does not follow (and distort) the waveform


def to_db(linear: float) -> float:
    return float(20.0 * np.log10(linear)) if linear > 0.0 else float("-inf")


def oversampled(block: np.ndarray) -> np.ndarray:
    """(N * OVERSAMPLING, C) band-limited interpolation of `block` (N, C): zero-fill above Nyquist."""
    n = block.shape[0]
    spectrum = np.fft.rfft(block, axis=0)
    if n % 2 == 0:
        # The Nyquist bin stands for a cosine that, at the higher rate, is half positive, half negative
        # frequency; only the positive half is kept, so it must carry half the amplitude.
        spectrum[-1] *= 0.5
    return np.fft.irfft(spectrum, n=n * OVERSAMPLING, axis=0) * OVERSAMPLING


def true_peak_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """(T,) largest oversampled magnitude in each sample period, over all channels of `audio` (T, C).

    `rate` does not change the result (interpolation is relative to the sample rate); it is taken so
    callers need not know that.
    """
    del rate
    n_frames = audio.shape[0]
    envelope = np.empty(n_frames, dtype=np.float32)
    taper = (0.5 - 0.5 * np.cos(np.pi * np.arange(BLOCK_CONTEXT) / BLOCK_CONTEXT)).astype(np.float32)
    for start in range(0, n_frames, BLOCK_FRAMES):
        stop = min(start + BLOCK_FRAMES, n_frames)
        block = np.zeros((stop - start + 2 * BLOCK_CONTEXT, audio.shape[1]), dtype=np.float32)
        lead = min(BLOCK_CONTEXT, start)
        tail = min(BLOCK_CONTEXT, n_frames - stop)
        block[BLOCK_CONTEXT - lead : BLOCK_CONTEXT + stop - start + tail] = audio[start - lead : stop + tail]
        block[:BLOCK_CONTEXT] *= taper[:, None]
        block[-BLOCK_CONTEXT:] *= taper[::-1, None]
        core = oversampled(block)[
            BLOCK_CONTEXT * OVERSAMPLING : (BLOCK_CONTEXT + stop - start) * OVERSAMPLING
        ]
        # (T', OVERSAMPLING, C): the sub-samples of each original sample period, then the largest of all.
        per_sample = np.abs(core).reshape(stop - start, OVERSAMPLING, -1).max(axis=(1, 2))
        # The original samples are peaks too; interpolation reproduces them only to rounding.
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
