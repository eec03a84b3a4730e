"""Encoding prepared float audio into a file with libsndfile, tags included, and reading it back to check.

Only ever writes to a temporary path handed in by writer.py; what to do with failures (removing the
temporary file, keeping the target untouched) is decided there.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from cocompose.export.errors import ExportError
from cocompose.export.formats import AudioFormat
from cocompose.export.tags import SOFTWARE, TrackTags, id3v2_length, id3v2_tag

BLOCK_FRAMES = 1 << 16  # about 1.5 s at 44.1 kHz: progress moves often enough, the overhead stays small
# What a failing write can raise: libsndfile errors, OS errors (disk full, EFBIG under a file-size
# limit), and the bare assert soundfile uses to check that every frame was written.
WRITE_FAILURES = (sf.LibsndfileError, OSError, RuntimeError, AssertionError)


def encode(
    path: Path,
    audio: np.ndarray,
    rate: int,
    fmt: AudioFormat,
    subtype: str,
    compression_level: float | None,
    tags: TrackTags,
    on_block: Callable[[float], None],
) -> None:
    """Write `audio` (T, C) float32 to `path` as `fmt`/`subtype` with `tags`; on_block(fraction done)."""
    try:
        with sf.SoundFile(
            path,
            "w",
            samplerate=rate,
            channels=audio.shape[1],
            format=fmt.container,
            subtype=subtype,
            compression_level=compression_level,
            bitrate_mode=fmt.bitrate_mode,
        ) as out:
            if fmt.name != "mp3":  # MP3 gets its own ID3 tag afterwards (see tags.py for why)
                # Vorbis and Opus write their comment header with the first audio, so tags go in first.
                for name, value in {**tags.present(), "software": SOFTWARE}.items():
                    setattr(out, name, value)
            for start in range(0, audio.shape[0], BLOCK_FRAMES):
                out.write(audio[start : start + BLOCK_FRAMES])
                on_block(min(1.0, (start + BLOCK_FRAMES) / audio.shape[0]))
    except WRITE_FAILURES as exc:
        raise ExportError(f"writing the {fmt.name} file failed: {describe(exc)}{space_left(path)}") from exc


def prepend_id3(mpeg_path: Path, tagged_path: Path, tags: TrackTags) -> None:
    """Write `tagged_path` as our ID3v2.3 tag followed by the MPEG frames of `mpeg_path`."""
    try:
        with mpeg_path.open("rb") as source, tagged_path.open("wb") as target:
            skip = id3v2_length(source.read(10))  # drop any tag LAME wrote, so there is only ours
            source.seek(skip)
            target.write(id3v2_tag(tags))
            shutil.copyfileobj(source, target)
    except OSError as exc:
        raise ExportError(f"writing the MP3 tags failed: {describe(exc)}{space_left(tagged_path)}") from exc


def read_back(path: Path, fmt: AudioFormat, expected_frames: int, rate: int) -> np.ndarray:
    """The file decoded again (T, C) float32, after checking it is complete.

    A write cut short (a full disk) can leave a file that libsndfile opens without complaint, so the
    frame count is the real test. Lossy decoders may differ by a few samples of codec delay.
    """
    try:
        decoded, decoded_rate = sf.read(path, dtype="float32", always_2d=True)
    except WRITE_FAILURES as exc:
        raise ExportError(f"the written {fmt.name} file cannot be read back: {describe(exc)}") from exc
    slack = round(0.005 * rate) if fmt.lossy else 0
    if decoded_rate != rate or abs(decoded.shape[0] - expected_frames) > slack:
        raise ExportError(
            f"the written {fmt.name} file is incomplete ({decoded.shape[0]} of {expected_frames} frames "
            f"at {decoded_rate} Hz); the disk may be full"
        )
    return decoded


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, AssertionError):
        return "not every frame could be written"
    message = str(exc) or type(exc).__name__
    if "System error" in message:
        # libsndfile's whole message when write() fails, whatever errno said; say what it usually means.
        return f"{message.rstrip('.')} (the disk may be full, or the file too large for it)"
    return message


def space_left(path: Path) -> str:
    """' (N MB free on that disk)', to tell a full disk from other failures at a glance; '' if unknown."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f" ({free / 1e6:.0f} MB free on that disk)"
