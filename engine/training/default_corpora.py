"""The songs the default-model pipeline trains on (engine/training/default_model.py): each synthesised
corpus (written once, recognised again by the settings in its recipe.json), and the metadata files that
hand a stage some of a corpus's songs or the songs of several corpora."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from engine import checkpoint

# Bumped when `cocompose synth` writes more per song (2: beats_per_bar), so an older corpus is rewritten.
CORPUS_FORMAT = 2


def corpus_key(songs: int, seconds: float, seed: int, sample_rate: int, duets: float = 0.0) -> dict:
    """The settings a corpus's recipe.json records (`duets` only when the corpus has some)."""
    return {"songs": songs, "seconds": seconds, "seed": seed, "sample_rate": sample_rate,
            "format": CORPUS_FORMAT, **({"duets": duets} if duets else {})}  # fmt: skip


def written_as(corpus: Path, key: dict) -> bool:
    """Whether `corpus` holds a complete corpus synthesised with the settings `key` (its recipe.json)."""
    try:
        return (corpus / "metadata.jsonl").is_file() and json.loads(
            (corpus / "recipe.json").read_text()
        ) == key
    except (OSError, json.JSONDecodeError):
        return False


def write_songs(stage: str, folder: Path, what: str, key: dict, say: Callable[[str], None]) -> None:
    """Synthesise the corpus `key` describes into `folder` for `stage`, unless it is there already."""
    from engine.data.synth import write_corpus

    if written_as(folder, key):
        say(f"{stage}: {folder} is already there")
        return
    songs, seconds, seed, rate = key["songs"], key["seconds"], key["seed"], key["sample_rate"]
    say(f"{stage}: {songs} {what} x {seconds:g} s at {rate} Hz (seed {seed})")
    duets = key.get("duets", 0.0)
    write_corpus(folder, songs, seconds, seed, rate, overwrite=True, progress=say, duets=duets)
    # Written last: a corpus stopped half-way has no recipe.json, so the next run writes it again.
    (folder / "recipe.json").write_text(json.dumps(key, sort_keys=True))


def _names(rows: list[str]) -> set[str]:
    """Every artist and genre a list of metadata.jsonl lines names."""
    records = [json.loads(row) for row in rows if row.strip()]
    return {f"artist {r['artist']}" for r in records} | {f"genre {r['genre']}" for r in records}


def first_songs_metadata(corpus: Path, subset: int, kind: str) -> Path:
    """CORPUS/metadata-first-N.jsonl: the corpus's first `subset` rows, for a `kind` model trained on
    them (written atomically, so a stopped pipeline never leaves half of one). A prior's label ids come
    from its songs, so for one the subset must name every artist and genre of the corpus."""
    path = corpus / f"metadata-first-{subset}.jsonl"
    every = (corpus / "metadata.jsonl").read_text().splitlines(keepends=True)
    rows = every[:subset]
    if kind != "vqvae":
        missing = _names(every) - _names(rows)
        if missing:
            raise ValueError(
                f"the corpus's first {subset} songs lack {', '.join(sorted(missing))}; the {kind} "
                "would not know them: train it on more songs"
            )
    checkpoint.atomic_write(path, lambda tmp: tmp.write_text("".join(rows)))
    return path


def joined_metadata(root: Path, folders: tuple[Path, ...], name: str) -> Path:
    """ROOT/NAME: every row of the folders' metadata.jsonl, each path made relative to ROOT, the folders'
    parent (written atomically)."""
    rows = []
    for folder in folders:
        for line in (folder / "metadata.jsonl").read_text().splitlines():
            row = json.loads(line)
            row["path"] = f"{folder.relative_to(root).as_posix()}/{row['path']}"
            rows.append(json.dumps(row) + "\n")
    path = root / name
    checkpoint.atomic_write(path, lambda tmp: tmp.write_text("".join(rows)))
    return path
