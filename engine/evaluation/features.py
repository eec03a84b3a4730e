"""Clip features for the conditioning classifiers: what a listener would use to name artist and genre.

Timbre (the artist: one instrument, loudest in the mix): per mel band, the mean and standard deviation
of the log energy over the clip and the mean size of its frame-to-frame change (attack and decay).
Rhythm (the genre: tempo, metre, swing and drum sound): the autocorrelation of the onset strength in a
low and a high group of bands, read at log-spaced lags, so each tempo range leaves its own pattern.

Everything is numpy in float64 and a pure function of (audio, sample rate, config): the same clip always
gives the same vector, at any sample rate (the STFT window is a fixed duration rounded to a power of two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.analysis.mel import mel_edges, mel_filters


@dataclass(frozen=True)
class FeatureConfig:
    n_mels: int = 40
    window_s: float = 0.05  # STFT window, rounded to a power of two in samples; hop is a quarter of it
    fmin_hz: float = 30.0
    split_hz: float = 2000.0  # rhythm: kick and bass below, snares, hats and attacks above
    min_lag_s: float = 0.12  # a fast 16th note
    max_lag_s: float = 1.0  # a slow beat
    n_lags: int = 24

    def n_fft(self, sample_rate: int) -> int:
        return 1 << max(6, round(np.log2(self.window_s * sample_rate)))

    def size(self) -> int:
        return 3 * self.n_mels + 2 * self.n_lags

    @property
    def timbre(self) -> slice:
        """Columns of the timbre statistics."""
        return slice(0, 3 * self.n_mels)

    @property
    def rhythm(self) -> slice:
        """Columns of the onset autocorrelations."""
        return slice(3 * self.n_mels, self.size())


def log_mel(audio: np.ndarray, sample_rate: int, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(T,) mono audio -> (frames, n_mels) natural-log mel energies (Hann window, hop n_fft / 4)."""
    x = np.asarray(audio, dtype=np.float64)
    n_fft = config.n_fft(sample_rate)
    if x.ndim != 1 or len(x) < 2 * n_fft:
        raise ValueError(
            f"a clip must be mono and at least {2 * n_fft} samples ({2 * n_fft / sample_rate:.2f} s) "
            f"long, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("a clip must not contain NaN or infinite samples")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 4] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.log(power @ mel_filters(sample_rate, n_fft, config.n_mels, config.fmin_hz).T + 1e-8)


def _onset_autocorrelation(band_energy: np.ndarray, frame_s: float, config: FeatureConfig) -> np.ndarray:
    """Normalised autocorrelation of the onset strength (summed rises of log energy), at log-spaced lags."""
    flux = np.maximum(np.diff(band_energy, axis=0), 0.0).sum(axis=1)
    flux = flux - flux.mean()
    n = len(flux)
    full = np.correlate(flux, flux, "full")[n - 1 :] / np.arange(n, 0, -1)  # unbiased: mean product per lag
    full = full / max(full[0], 1e-12)
    lags = np.geomspace(config.min_lag_s, config.max_lag_s, config.n_lags) / frame_s
    return np.interp(lags, np.arange(n), full, right=0.0)


def clip_features(audio: np.ndarray, sample_rate: int, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """One clip -> its feature vector (config.size(),): timbre statistics then rhythm."""
    mel = log_mel(audio, sample_rate, config)
    delta = np.abs(np.diff(mel, axis=0))
    n_fft = config.n_fft(sample_rate)
    frame_s = (n_fft // 4) / sample_rate
    high = mel_edges(sample_rate, config.n_mels, config.fmin_hz)[1:-1] >= config.split_hz  # band centres
    rhythm = [_onset_autocorrelation(mel[:, part], frame_s, config) for part in (~high, high)]
    return np.concatenate([mel.mean(axis=0), mel.std(axis=0), delta.mean(axis=0), *rhythm])


def feature_matrix(
    clips: list[np.ndarray], sample_rate: int, config: FeatureConfig = FeatureConfig()
) -> np.ndarray:
    """Clips -> (N, config.size()) features."""
    if not clips:
        return np.zeros((0, config.size()))
    return np.stack([clip_features(clip, sample_rate, config) for clip in clips])
