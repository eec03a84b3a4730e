"""What the waveform view draws, computed with numpy alone: a min/max envelope and a dB spectrogram.

Pure functions of the audio, kept apart from Qt so they can be tested headless and run on any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DB = -100.0


@dataclass(frozen=True)
class Envelope:
    """Per bucket of `bucket` samples: the lowest and highest sample. `times` are the buckets' starts."""

    times: np.ndarray  # (N,) seconds
    low: np.ndarray  # (N,)
    high: np.ndarray  # (N,)


@dataclass(frozen=True)
class Spectrogram:
    db: np.ndarray  # (frames, bins) power in dB relative to full scale, floored at MIN_DB
    hop_seconds: float  # time between frames
    bin_hz: float  # frequency between bins


def envelope(audio: np.ndarray, sample_rate: int, max_points: int = 4000) -> Envelope:
    """Min and max of `audio` over at most `max_points` equal buckets (every sample when it is short)."""
    audio = np.asarray(audio, np.float32)
    if len(audio) == 0:
        empty = np.zeros(0, np.float32)
        return Envelope(empty, empty, empty)
    bucket = max(1, -(-len(audio) // max_points))
    whole = len(audio) // bucket * bucket
    low = audio[:whole].reshape(-1, bucket).min(axis=1)
    high = audio[:whole].reshape(-1, bucket).max(axis=1)
    if whole < len(audio):
        low = np.append(low, audio[whole:].min())
        high = np.append(high, audio[whole:].max())
    times = np.arange(len(low)) * (bucket / sample_rate)
    return Envelope(times, low, high)


def spectrogram(audio: np.ndarray, sample_rate: int, n_fft: int = 512, max_frames: int = 2000) -> Spectrogram:
    """A Hann-windowed power spectrogram in dB (a full-scale sine reads about 0 dB).

    The hop is n_fft / 2, or larger when needed to keep at most `max_frames` frames (a long song then
    skips between frames: this is a picture, not an analysis).
    """
    audio = np.asarray(audio, np.float32)
    if n_fft < 16 or n_fft & (n_fft - 1):
        raise ValueError(f"n_fft must be a power of two of at least 16, got {n_fft}")
    bins = n_fft // 2 + 1
    if len(audio) < n_fft:
        return Spectrogram(
            np.full((0, bins), MIN_DB, np.float32), n_fft / 2 / sample_rate, sample_rate / n_fft
        )
    count = len(audio) - n_fft + 1
    hop = max(n_fft // 2, -(-count // max_frames))
    starts = np.arange(0, count, hop)
    frames = audio[starts[:, None] + np.arange(n_fft)[None, :]]  # (frames, n_fft)
    window = np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    # A full-scale sine of amplitude 1 puts (sum(window) / 2)^2 in its bin.
    reference = (window.sum() / 2) ** 2
    with np.errstate(divide="ignore"):
        db = np.maximum(10 * np.log10(power / reference), MIN_DB)
    return Spectrogram(db.astype(np.float32), hop / sample_rate, sample_rate / n_fft)
