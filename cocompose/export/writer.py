"""export_track: a finished track (float samples at any rate) to a tagged, loudness-normalised file and
its JSON sidecar, all or nothing.

Order of work, and why: check everything that can be checked before any file exists; resample to the
output rate (so loudness and peaks are measured on what is encoded); fade; normalise and limit; encode
to a temporary file; read that file back to check it is complete and to report its real loudness and
peak; write the sidecar the same way; only then rename both into place.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cocompose.export import atomic, formats, sidecar
from cocompose.export.encode import encode, prepend_id3, read_back
from cocompose.export.errors import ExportError
from cocompose.export.loudness import integrated_lufs, normalise
from cocompose.export.peak import to_db, true_peak_db
from cocompose.export.prepare import checked_audio, faded_out, ready_for_integers, resampled
from cocompose.export.tags import SOFTWARE, TrackTags

# progress(fraction in [0, 1], stage). It is also the place to cancel: whatever it raises stops the
# export, leaves no file behind, and reaches the caller unchanged.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ExportSettings:
    format: str | None = None  # "wav", "flac", "ogg", "opus" or "mp3"; None: from the file extension
    sample_rate: int | None = None  # None: the source rate, or the nearest one the codec accepts
    loudness_lufs: float | None = -14.0  # integrated loudness target; None leaves the level alone
    true_peak_dbtp: float | None = -1.0  # limiter ceiling; None turns the limiter off
    fade_out_s: float = 0.0
    bit_depth: formats.BitDepth | None = None  # wav: 16/24/32/"float", flac: 16/24; None: 24
    quality: float | None = None  # lossy only: 0 = smallest file, 1 = best; None: per format, see docs


STREAMING = ExportSettings()  # -14 LUFS, -1 dBTP: the level Spotify and YouTube normalise to
MASTER = ExportSettings(loudness_lufs=None, true_peak_dbtp=None, bit_depth=24)  # the render, untouched


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar_path: Path | None
    format: str
    sample_rate: int
    channels: int
    duration_s: float
    integrated_lufs: float | None  # measured on the decoded file; None: undefined (silence, < 0.4 s)
    peak_dbfs: float  # largest sample of the decoded file; -inf for silence
    true_peak_dbtp: float  # largest oversampled peak of the decoded file
    gain_db: float  # static gain applied by loudness normalisation
    notes: tuple[str, ...]  # what the caller should know: no normalisation, limiting, resampling...


def export_track(
    audio: np.ndarray,
    source_rate: int,
    path: str | os.PathLike[str],
    settings: ExportSettings = STREAMING,
    *,
    tags: TrackTags | None = None,
    sidecar_data: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export `audio` ((T,) or (T, C) float at `source_rate`) to `path`; `sidecar_data` (None: no sidecar)
    goes under "track" in `<path>.json`. Raises ExportError, leaving the folder as it was."""
    report = progress or (lambda fraction, stage: None)
    target = Path(path)
    tags = tags or TrackTags()
    fmt = formats.resolve_format(target, settings.format)
    subtype = formats.choose_subtype(fmt, settings.bit_depth)
    level = formats.compression_level(fmt, settings.quality)
    samples = checked_audio(audio, source_rate)
    rate = formats.choose_sample_rate(fmt, source_rate, settings.sample_rate)
    tags.check()
    if sidecar_data is not None:
        sidecar.encode_json(sidecar_data, "sidecar data")  # refuse bad data before the slow part
    atomic.check_folder(target)

    notes: list[str] = []
    if rate != source_rate:
        if settings.sample_rate is None:
            notes.append(f"resampled from {source_rate} to {rate} Hz, the nearest rate {fmt.name} supports")
        report(0.0, "resample")
    samples = faded_out(resampled(samples, source_rate, rate), rate, settings.fade_out_s)
    report(0.1, "loudness")
    samples, loudness = normalise(samples, rate, settings.loudness_lufs, settings.true_peak_dbtp)
    notes.extend(loudness.notes)
    samples, clipped = ready_for_integers(samples, subtype)
    if clipped:
        notes.append(f"{clipped} samples over full scale were clipped (the true-peak limiter was off)")

    temporaries: list[Path] = []
    try:
        encoded = atomic.temporary_beside(target)
        temporaries.append(encoded)
        encode(encoded, samples, rate, fmt, subtype, level, tags, lambda f: report(0.4 + 0.5 * f, "encode"))
        if fmt.name == "mp3":
            tagged = atomic.temporary_beside(target)
            temporaries.append(tagged)
            prepend_id3(encoded, tagged, tags)
            encoded = tagged
        report(0.9, "verify")
        decoded = read_back(encoded, fmt, samples.shape[0], rate)
        peak = float(np.abs(decoded).max())
        result = ExportResult(
            path=target,
            sidecar_path=sidecar.sidecar_path_for(target) if sidecar_data is not None else None,
            format=fmt.name,
            sample_rate=rate,
            channels=decoded.shape[1],
            duration_s=decoded.shape[0] / rate,
            integrated_lufs=integrated_lufs(decoded, rate),
            peak_dbfs=to_db(peak),
            true_peak_dbtp=true_peak_db(decoded, rate),
            gain_db=loudness.gain_db,
            notes=tuple(notes),
        )
        atomic.make_durable(encoded)
        if sidecar_data is not None:
            document = sidecar_document(result, subtype, source_rate, settings, tags, sidecar_data)
            sidecar_file = atomic.temporary_beside(target)
            temporaries.append(sidecar_file)
            sidecar_file.write_bytes(sidecar.encode_json(document, "sidecar"))
            atomic.make_durable(sidecar_file)
        # Both files are complete and on disk; the two renames are the only steps left.
        atomic.commit(encoded, target)
        temporaries.remove(encoded)
        if sidecar_data is not None:
            atomic.commit(sidecar_file, sidecar.sidecar_path_for(target))
            temporaries.remove(sidecar_file)
    except OSError as exc:
        raise ExportError(f"exporting to {str(target)!r} failed: {exc.strerror or exc}") from exc
    finally:
        for leftover in temporaries:
            atomic.discard(leftover)
    report(1.0, "done")
    return result


def sidecar_document(
    result: ExportResult,
    subtype: str,
    source_rate: int,
    settings: ExportSettings,
    tags: TrackTags,
    track: Mapping[str, Any],
) -> dict[str, Any]:
    """The sidecar's content; the schema is documented in docs/EXPORT.md."""
    return {
        "schema": sidecar.SCHEMA,
        "file": result.path.name,
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "software": SOFTWARE,
        "audio": {
            "format": result.format,
            "subtype": subtype,
            "sample_rate": result.sample_rate,
            "source_rate": source_rate,
            "channels": result.channels,
            "duration_s": round(result.duration_s, 6),
        },
        "loudness": {
            "target_lufs": settings.loudness_lufs,
            "integrated_lufs": sidecar.finite_or_none(result.integrated_lufs),
            "gain_db": round(result.gain_db, 3),
            "true_peak_ceiling_dbtp": settings.true_peak_dbtp,
            "true_peak_dbtp": sidecar.finite_or_none(result.true_peak_dbtp),
            "peak_dbfs": sidecar.finite_or_none(result.peak_dbfs),
        },
        "settings": asdict(settings),
        "tags": tags.present(),
        "notes": list(result.notes),
        "track": dict(track),
    }
