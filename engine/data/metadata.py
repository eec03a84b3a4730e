"""The metadata file of a training folder: one row per song with its audio file, artist, genre, lyrics.

Accepted: `metadata.jsonl` (one JSON object per line, what `cocompose synth` writes) or `metadata.csv`
(a header row). The audio column may be called `file` or `path`; paths are relative to the folder.
Artist, genre and lyrics may be missing or empty (they then become "unknown" / no lyrics). Optional
`tempo_bpm` and `beats_per_bar` give a song's beat clock (bars counted from the file's first sample), for
priors that have one; a song without a tempo trains such a prior as a song of unknown tempo. Optional
`artist_changes` lists the artists who take over later in the song (a duet): a list of
`{"start_s": seconds, "artist": name}` in order (in a CSV, that list as JSON text); `artist` is then the
one who opens it. A crop is labelled with the artist playing at its end (`engine/data/crop_labels.py`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from engine.prior.tempo import BeatClock

METADATA_NAMES = ("metadata.jsonl", "metadata.csv")


@dataclass(frozen=True)
class SongRecord:
    path: Path  # absolute path of the audio file
    artist: str
    genre: str
    lyrics: str
    tempo_bpm: float | None = None
    beats_per_bar: int | None = None
    # (start in seconds, artist) of every artist who takes over after the opening one, in time order.
    artist_changes: tuple[tuple[float, str], ...] = ()

    @property
    def artists(self) -> tuple[str, ...]:
        """Everyone who plays in the song, the opening artist first."""
        return (self.artist, *(name for _, name in self.artist_changes))


def find_metadata(data_dir: Path) -> Path:
    for name in METADATA_NAMES:
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(
        f"no metadata file in {data_dir}: expected {' or '.join(METADATA_NAMES)} with columns "
        "file|path, artist, genre, lyrics"
    )


def _rows(path: Path) -> list[tuple[str, dict]]:
    """(where, row) pairs; `where` names the line for error messages."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        return [(f"{path.name}:{i + 2}", dict(row)) for i, row in enumerate(reader)]
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}:{i}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path.name}:{i}: expected a JSON object per line")
        rows.append((f"{path.name}:{i}", row))
    return rows


def _tempo(row: dict, where: str) -> dict:
    """tempo_bpm / beats_per_bar of a row (both None without a tempo; 4 beats per bar unless given)."""
    tempo, per_bar = row.get("tempo_bpm"), row.get("beats_per_bar")
    if tempo in (None, ""):
        return {}
    try:
        clock = BeatClock(float(tempo), 4 if per_bar in (None, "") else int(float(per_bar)))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {"tempo_bpm": clock.tempo_bpm, "beats_per_bar": clock.beats_per_bar}


def _artist_changes(row: dict, where: str) -> dict:
    """artist_changes of a row as (start_s, artist) pairs, checked: starts positive and increasing."""
    changes = row.get("artist_changes")
    if changes in (None, "", []):
        return {}
    if isinstance(changes, str):
        try:
            changes = json.loads(changes)
        except json.JSONDecodeError:
            changes = None
    problem = f'{where}: artist_changes must be a list of {{"start_s": seconds, "artist": name}}'
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise ValueError(problem)
    pairs = []
    for change in changes:
        try:
            start, name = float(change["start_s"]), str(change["artist"]).strip()
        except (KeyError, TypeError, ValueError):
            raise ValueError(problem) from None
        if not name or not start > (pairs[-1][0] if pairs else 0.0):
            raise ValueError(f"{where}: artist_changes must name an artist at each start, the starts after "
                             f"0 s and in increasing order; got {start:g} s, {name!r}")  # fmt: skip
        pairs.append((start, name))
    return {"artist_changes": tuple(pairs)}


def read_metadata(data_dir: str | Path, metadata: str | Path | None = None) -> list[SongRecord]:
    """Every row of the folder's metadata file, in file order."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_dir}")
    path = Path(metadata) if metadata else find_metadata(data_dir)
    records = []
    for where, row in _rows(path):
        audio = row.get("file") or row.get("path")
        if not audio:
            raise ValueError(f"{where}: no 'file' or 'path' column naming the audio file")
        records.append(
            SongRecord(
                path=(data_dir / str(audio)).resolve(),
                artist=str(row.get("artist") or "unknown"),
                genre=str(row.get("genre") or "unknown"),
                lyrics=str(row.get("lyrics") or ""),
                **_tempo(row, where),
                **_artist_changes(row, where),
            )
        )
    if not records:
        raise ValueError(f"{path} lists no songs")
    return records
