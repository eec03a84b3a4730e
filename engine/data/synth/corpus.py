"""Write a synthetic corpus: N audio files plus `metadata.jsonl`, all or nothing.

Everything is written into a hidden staging folder inside OUT_DIR first and moved into place only when
every song has rendered, metadata last; a run that fails or is interrupted removes its staging folder
(and OUT_DIR itself if the run created it), so no half-written corpus is ever left behind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import soundfile as sf

from engine.data.synth.song import (
    HANDOFF_MARGIN_BARS,
    MIN_DUET_SECONDS,
    MIN_SONG_SECONDS,
    SongPlan,
    compose_song,
    is_duet,
    render_song,
)

METADATA_NAME = "metadata.jsonl"
FORMATS = {"flac": "FLAC", "wav": "WAV"}
SAMPLE_RATE_RANGE = (8000, 48000)


def song_metadata(plan: SongPlan, path: str, sample_rate: int) -> dict:
    """The song's metadata.jsonl row; a duet's adds `artist_changes` (`artist` is the one who opens it)."""
    row = {
        "path": path,
        "artist": plan.artist.name,
        "genre": plan.genre.name,
        "lyrics": plan.lyrics,
        "seconds": plan.seconds,
        "sample_rate": sample_rate,
        "tempo_bpm": plan.tempo_bpm,
        "beats_per_bar": plan.genre.beats_per_bar,
        "key": plan.key.name,
        "sections": [
            {"name": s.name, "start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4)}
            for s in plan.sections
        ],
        "seed": plan.seed,
        "index": plan.index,
    }
    if plan.changes:
        row["artist_changes"] = [
            {"start_s": round(c.start_s, 4), "artist": c.artist.name} for c in plan.changes
        ]
    return row


def check_request(
    songs: int, seconds: float, seed: int, sample_rate: int, fmt: str, duets: float = 0.0
) -> None:
    """Raise ValueError, with the accepted values, for anything a corpus cannot be made from."""
    if songs < 1:
        raise ValueError(f"--songs must be at least 1, got {songs}")
    if not seconds > 0:
        raise ValueError(f"--seconds must be positive, got {seconds}")
    if seconds < MIN_SONG_SECONDS:
        raise ValueError(
            f"--seconds {seconds} is too short for a song form (intro, verse, chorus, ending at the "
            f"slowest tempo): use at least {MIN_SONG_SECONDS} s"
        )
    if seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {seed}")
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise ValueError(f"--sample-rate must be within {SAMPLE_RATE_RANGE[0]}..{SAMPLE_RATE_RANGE[1]} Hz")
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not 0.0 <= duets <= 1.0:
        raise ValueError(f"--duets is a share of the songs and must be within 0..1, got {duets}")
    if duets > 0 and seconds < MIN_DUET_SECONDS:
        raise ValueError(
            f"--seconds {seconds} is too short for duets (each artist plays {HANDOFF_MARGIN_BARS} bars of "
            f"the body at the slowest tempo): use at least {MIN_DUET_SECONDS} s with --duets"
        )


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> bool:
    """Make sure OUT_DIR is a writable folder we may fill; returns True if this call created it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"{out_dir} is not empty; pass --overwrite to replace the corpus in it")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to output folder {out_dir}")
    return created


def _previous_paths(out_dir: Path) -> set[str]:
    """Audio files listed by a corpus already in OUT_DIR (replaced by --overwrite)."""
    try:
        lines = (out_dir / METADATA_NAME).read_text().splitlines()
        return {json.loads(line)["path"] for line in lines if line.strip()}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def write_corpus(
    out_dir: str | os.PathLike,
    songs: int,
    seconds: float,
    seed: int,
    sample_rate: int = 22050,
    fmt: str = "flac",
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    duets: float = 0.0,
) -> list[dict]:
    """Synthesise `songs` songs into OUT_DIR; returns the metadata rows written to metadata.jsonl.

    `duets` is the share of songs whose part passes to a second artist mid-song (song.is_duet picks them
    by seed and index, so at 0 every song is the solo song it always was)."""
    check_request(songs, seconds, seed, sample_rate, fmt, duets)
    out = Path(out_dir)
    created = _prepare_out_dir(out, overwrite)
    stale = _previous_paths(out)
    staging = out / f".synth-partial-{os.getpid()}"
    rows: list[dict] = []
    try:
        staging.mkdir()
        for index in range(songs):
            plan = compose_song(seed, index, seconds, duet=is_duet(seed, index, duets))
            name = f"song_{index:05d}.{fmt}"
            audio = render_song(plan, sample_rate)
            sf.write(staging / name, audio, sample_rate, subtype="PCM_16", format=FORMATS[fmt])
            rows.append(song_metadata(plan, name, sample_rate))
            if progress and ((index + 1) % 10 == 0 or index + 1 == songs):
                progress(f"synthesised {index + 1}/{songs} songs")
        with open(staging / METADATA_NAME, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=True) + "\n")
        for row in rows:
            os.replace(staging / row["path"], out / row["path"])
        os.replace(staging / METADATA_NAME, out / METADATA_NAME)  # last: the corpus is complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    staging.rmdir()
    for path in stale - {row["path"] for row in rows}:
        (out / path).unlink(missing_ok=True)
    return rows
