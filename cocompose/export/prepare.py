"""Checking and shaping the samples before loudness and encoding: validation, resampling, fade-out,
and the final conversion towards integer samples (dither, clipping).
"""

from __future__ import annotations

import numpy as np
import soxr

from cocompose.export.errors import ExportError

MAX_CHANNELS = 2
DITHER_SEED = 0  # fixed, so exporting the same track twice gives the same file


def checked_audio(audio: np.ndarray, source_rate: int) -> np.ndarray:
    """`audio` as (T, C) float32, or ExportError saying what is wrong with it."""
    if not isinstance(source_rate, int | np.integer) or isinstance(source_rate, bool) or source_rate <= 0:
        raise ExportError(f"source_rate must be a positive whole number of Hz, not {source_rate!r}")
    audio = np.asarray(audio)
    if not np.issubdtype(audio.dtype, np.floating):
        raise ExportError(f"audio must hold float samples in [-1, 1], not {audio.dtype}")
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2:
        raise ExportError(f"audio must be (frames,) or (frames, channels), not shape {audio.shape}")
    frames, channels = audio.shape
    if frames == 0 or channels == 0:
        raise ExportError(f"audio is empty (shape {audio.shape}); there is nothing to export")
    if channels > MAX_CHANNELS:
        hint = " (it looks like (channels, frames): pass audio.T)" if frames <= MAX_CHANNELS else ""
        raise ExportError(f"audio has {channels} channels; export takes mono or stereo{hint}")
    bad = ~np.isfinite(audio)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise ExportError(
            f"audio contains {int(bad.sum())} NaN or infinite samples (the first at "
            f"{first / source_rate:.3f} s); the render is broken, refusing to export it"
        )
    return np.ascontiguousarray(audio, dtype=np.float32)


def resampled(audio: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    if rate == source_rate:
        return audio
    # VHQ: the slowest soxr setting, still far faster than encoding, and transparent for a master.
    return np.ascontiguousarray(soxr.resample(audio, source_rate, rate, quality="VHQ"), dtype=np.float32)


def faded_out(audio: np.ndarray, rate: int, fade_out_s: float) -> np.ndarray:
    """The last `fade_out_s` seconds multiplied by a half cosine from 1 down to exactly 0 at the end.

    The half cosine starts and ends with zero slope, so neither end of the fade clicks.
    """
    if not np.isfinite(fade_out_s) or fade_out_s < 0:
        raise ExportError(f"fade_out_s must be zero or a positive number of seconds, not {fade_out_s}")
    duration_s = audio.shape[0] / rate
    if fade_out_s > duration_s:
        raise ExportError(f"fade_out_s ({fade_out_s} s) is longer than the track ({duration_s:.3f} s)")
    n = round(fade_out_s * rate)
    if n == 0:
        return audio
    curve = 0.5 * (1.0 + np.cos(np.pi * np.arange(1, n + 1) / n))  # just under 1 ... exactly 0
    out = audio.copy()
    out[-n:] *= curve[:, None].astype(np.float32)
    return out


def ready_for_integers(audio: np.ndarray, subtype: str) -> tuple[np.ndarray, int]:
    """Audio the encoder can turn into integer samples safely; also how many samples had to be clipped.

    libsndfile converts float to integer without clipping, so a sample over full scale would wrap round
    to the other extreme; clip it instead (only possible with the true-peak ceiling turned off).
    16-bit gets TPDF dither (two uniform variables, +-1 LSB) so quiet fades decay into noise rather
    than into truncation distortion. Digital silence is left silent.
    """
    if subtype in ("FLOAT", "DOUBLE"):
        return audio, 0
    out = audio
    if subtype == "PCM_16" and np.any(audio):
        rng = np.random.default_rng(DITHER_SEED)
        lsb = 1.0 / 32768.0
        noise = (rng.random(audio.shape, dtype=np.float32) - rng.random(audio.shape, dtype=np.float32)) * lsb
        out = audio + noise
    over = int(np.count_nonzero(np.abs(out) > 1.0))
    if over:
        out = np.clip(out, -1.0, 1.0)
    return out.astype(np.float32, copy=False), over
