"""Reading training audio without holding whole songs in memory.

A file is checked once, block by block, when the dataset is indexed (so truncated files, unknown
formats and NaN samples are found up front and skipped), and later only the span under a crop is read
from disk and resampled to the model's rate with soxr. Resampling a span with a margin on both sides
gives the same samples as resampling the whole file, up to the filter's edge effects inside the margin,
which are cut away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

_SCAN_BLOCK = 1 << 16  # frames per block when checking a file
# Frames (at the file's rate) read on each side of a crop so the resampler's filter has settled.
_RESAMPLE_MARGIN = 256


class UnreadableAudio(ValueError):
    """An audio file that cannot be used for training; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    frames: int  # frames that could actually be read (a truncated file reports fewer than its header)
    sample_rate: int
    channels: int


def scan(path: Path) -> AudioInfo:
    """Open and read `path` completely, in blocks, checking every sample is finite."""
    try:
        with sf.SoundFile(str(path)) as f:
            sample_rate, channels = f.samplerate, f.channels
            frames = 0
            while True:
                block = f.read(_SCAN_BLOCK, dtype="float32", always_2d=True)
                if not len(block):
                    break
                if not np.isfinite(block).all():
                    raise UnreadableAudio(f"NaN or infinite samples near {frames / sample_rate:.1f} s")
                frames += len(block)
    except UnreadableAudio:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise UnreadableAudio(str(exc)) from None
    if frames == 0:
        raise UnreadableAudio("no audio frames")
    return AudioInfo(frames, sample_rate, channels)


def model_frames(info: AudioInfo, sample_rate: int) -> int:
    """Length of the file in samples at the model's rate."""
    return int(info.frames * sample_rate // info.sample_rate)


def read_crop(path: Path, info: AudioInfo, sample_rate: int, offset: int, length: int) -> np.ndarray:
    """Samples [offset, offset + length) of the file at `sample_rate`, (length, channels) float32.

    Zero-padded past the end of the song (crops of songs shorter than a crop).
    """
    ratio = info.sample_rate / sample_rate
    if info.sample_rate == sample_rate:
        start, stop, lead = offset, offset + length, 0
    else:
        # Start on a frame that maps to a whole model-rate sample, so the resampled span lines up exactly.
        step = info.sample_rate // math.gcd(info.sample_rate, sample_rate)
        start = max(0, (math.floor(offset * ratio) - _RESAMPLE_MARGIN) // step * step)
        stop = math.ceil((offset + length) * ratio) + _RESAMPLE_MARGIN
        lead = offset - round(start / ratio)
    stop = min(stop, info.frames)
    out = np.zeros((length, info.channels), dtype=np.float32)
    if start >= stop:
        return out
    try:
        span = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)[0]
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise UnreadableAudio(f"{path.name}: {exc}") from None
    if info.sample_rate != sample_rate:
        span = soxr.resample(span, info.sample_rate, sample_rate, quality="HQ").astype(np.float32)
    piece = span[lead : lead + length]
    out[: len(piece)] = piece
    return out


def downmix(audio: np.ndarray, blend: float) -> np.ndarray:
    """(T, C) -> (T,): the paper's augmentation, a random blend of the left and right channels."""
    if audio.shape[1] == 1:
        return audio[:, 0]
    return blend * audio[:, 0] + (1.0 - blend) * audio[:, 1]
