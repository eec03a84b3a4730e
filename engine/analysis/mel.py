"""The mel scale and its triangular filters: shared by the classifiers' features and the VQ-VAE's log-mel
loss, so that what a model is trained to keep is measured on the same bands it is judged by."""

from __future__ import annotations

import numpy as np


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_edges(sample_rate: int, n_mels: int, fmin_hz: float) -> np.ndarray:
    """(n_mels + 2,) band edges in Hz, evenly spaced on the mel scale from fmin_hz to Nyquist."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(sample_rate / 2), n_mels + 2))


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float) -> np.ndarray:
    """Triangular filters, (n_mels, n_fft // 2 + 1), spaced evenly on the mel scale up to Nyquist."""
    edges = mel_edges(sample_rate, n_mels, fmin_hz)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)
