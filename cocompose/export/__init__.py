"""Export a finished track: WAV, FLAC, Ogg Vorbis, Opus or MP3, loudness-normalised, tagged, with a JSON
sidecar, written atomically. Qt-free and torch-free: the app and the CLI both call `export_track`.
See docs/EXPORT.md.
"""

from cocompose.export.errors import ExportError
from cocompose.export.formats import FORMATS, AudioFormat
from cocompose.export.tags import TrackTags
from cocompose.export.writer import MASTER, STREAMING, ExportResult, ExportSettings, export_track

__all__ = [
    "FORMATS",
    "MASTER",
    "STREAMING",
    "AudioFormat",
    "ExportError",
    "ExportResult",
    "ExportSettings",
    "TrackTags",
    "export_track",
]
