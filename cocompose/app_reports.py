"""What the app session reports to the window, in plain data and plain words: summaries of the loaded
model and the open project, an error as the musician reads it, the memory in use, and a free file name.
Qt-free and engine-free, so the window can import it without either."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cocompose.song import SongInfo
from cocompose.store import ProjectError


@dataclass(frozen=True)
class Primed:
    """What priming a song did: how much of the riff became its start, and what beat was heard in it."""

    codes: int
    seconds: float
    heard: str | None  # "the riff's tempo: ..." (or that none was heard); None when not listened for

    def notice(self, source: str) -> str:
        """One line for the window: 'Primed with riff.wav (6.0 s); the riff's tempo: 96 bpm, ...'."""
        line = f"Primed with {source} ({self.seconds:.1f} s)"
        return f"{line}; {self.heard}" if self.heard else line


@dataclass(frozen=True)
class ModelSummary:
    """What the app shows of a loaded model (plain data: the GUI never touches the engine)."""

    name: str
    reference: str  # "FOLDER#top", as projects record it
    device: str
    sample_rate: int
    codes_per_second: float
    artists: tuple[str, ...]
    genres: tuple[str, ...]
    can_upsample: bool
    weights_bytes: int
    recommended_guidance: float  # the label strength its bundle.json names (0: none)
    # (genre, usual tempo in bpm, beats per bar) for a model with a beat clock, which then takes a tempo;
    # None for a model without one.
    genre_tempi: tuple[tuple[str, float, int], ...] | None = None


@dataclass(frozen=True)
class ProjectSummary:
    path: Path
    song: SongInfo
    undo_label: str | None
    redo_label: str | None


def describe_error(exc: BaseException) -> str:
    """The message the musician sees: ours are written for them; anything else is named by its type."""
    if isinstance(exc, ProjectError | ValueError | OSError | LookupError) or type(exc).__name__ in (
        "ExportError", "CheckpointError", "AudioUnavailable"
    ):  # fmt: skip
        return str(exc) or type(exc).__name__
    return f"Unexpected {type(exc).__name__}: {exc}"


def memory_in_use() -> int | None:
    """Bytes of memory this process holds now (resident set), or None where that cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def unused_path(path: Path) -> Path:
    """`path`, or the first of path-2, path-3, ... (same suffix) that does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
