"""Artist and genre ids for training: built from the data for a new model, or the official lists
(extended with the data's new names) when fine-tuning a converted model.

Ids are written beside the trained model as `{v2|v3}_{artist|genre}_ids.txt` (`name;id` lines, the
official format), so `engine.prior.labels.load_artist_genre_ids(run_dir, v3)` lists the names the app
can offer. Id 0 is "unknown" in both, as in the official lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.metadata import SongRecord
from engine.prior.labels import UNKNOWN_ID, normalise_v2


def _version(v3: bool) -> str:
    return "v3" if v3 else "v2"


def _read_ids(path: Path) -> dict[str, int]:
    """`name;id` lines -> {lowercased name: id}; later duplicates win, as in the reference."""
    ids: dict[str, int] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            name, _, number = raw.strip().rpartition(";")
            ids[name.lower()] = int(number)
    return ids


@dataclass(frozen=True)
class Vocabulary:
    v3: bool
    artists: dict[str, int]  # normalised key -> id
    genres: dict[str, int]  # genre word (v2) or whole genre (v3) -> id
    new_artists: tuple[str, ...] = field(default=())  # keys added for this training run
    new_genres: tuple[str, ...] = field(default=())

    def artist_key(self, name: str) -> str:
        return name.lower() if self.v3 else normalise_v2(name)

    def genre_words(self, genre: str) -> list[str]:
        return [genre.lower()] if self.v3 else [w for w in normalise_v2(genre).split("_") if w]

    @property
    def n_artists(self) -> int:
        return max(self.artists.values(), default=UNKNOWN_ID) + 1

    @property
    def n_genres(self) -> int:
        return max(self.genres.values(), default=UNKNOWN_ID) + 1

    def artist_id(self, name: str) -> int:
        return self.artists.get(self.artist_key(name), UNKNOWN_ID)

    def genre_ids(self, genre: str, max_bow: int) -> list[int]:
        """Ids of the genre's words; extra words beyond what the model takes are dropped (training data
        must not stop a run)."""
        return [self.genres.get(word, UNKNOWN_ID) for word in self.genre_words(genre)[:max_bow]]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for what, table in (("artist", self.artists), ("genre", self.genres)):
            lines = [f"{name};{number}" for name, number in sorted(table.items(), key=lambda kv: kv[1])]
            (folder / f"{_version(self.v3)}_{what}_ids.txt").write_text("\n".join(lines) + "\n")

    def to_dict(self) -> dict:
        return {
            "v3": self.v3,
            "artists": self.artists,
            "genres": self.genres,
            "new_artists": list(self.new_artists),
            "new_genres": list(self.new_genres),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(
            data["v3"],
            dict(data["artists"]),
            dict(data["genres"]),
            tuple(data.get("new_artists", ())),
            tuple(data.get("new_genres", ())),
        )


def _with_new_names(known: dict[str, int], names: Iterable[str], first_id: int) -> tuple[dict, tuple]:
    table = dict(known)
    added = []
    for name in sorted(set(names) - set(known)):
        table[name] = first_id + len(added)
        added.append(name)
    return table, tuple(added)


def vocabulary_from_data(records: Iterable[SongRecord], v3: bool = False) -> Vocabulary:
    """A fresh vocabulary: 0 = unknown, then every artist and genre word of the data, alphabetically."""
    records = list(records)
    empty = Vocabulary(v3, {"unknown": UNKNOWN_ID}, {"unknown": UNKNOWN_ID})
    artists, new_artists = _with_new_names(
        empty.artists, (empty.artist_key(a) for r in records for a in r.artists), 1
    )
    words = (w for r in records for w in empty.genre_words(r.genre))
    genres, new_genres = _with_new_names(empty.genres, words, 1)
    return Vocabulary(v3, artists, genres, new_artists, new_genres)


def extend(base: Vocabulary, records: Iterable[SongRecord], n_artists: int, n_genres: int) -> Vocabulary:
    """`base` plus the data's names it lacks, numbered after the model's existing embedding rows."""
    records = list(records)
    artists, new_artists = _with_new_names(
        base.artists, (base.artist_key(a) for r in records for a in r.artists), max(n_artists, base.n_artists)
    )
    words = (w for r in records for w in base.genre_words(r.genre))
    genres, new_genres = _with_new_names(base.genres, words, max(n_genres, base.n_genres))
    return Vocabulary(base.v3, artists, genres, new_artists, new_genres)


def official_lists(ids_dir: Path, v3: bool, n_artists: int, n_genres: int) -> Vocabulary:
    """The official id lists of a converted model. Listed names whose id the model has no embedding row
    for are dropped (smaller test models use a prefix of the official lists)."""
    version = _version(v3)
    paths = [ids_dir / f"{version}_{what}_ids.txt" for what in ("artist", "genre")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"fine-tuning needs the model's id lists ({', '.join(missing)} not found); pass --ids DIR"
        )
    artists = {k: v for k, v in _read_ids(paths[0]).items() if v < n_artists}
    genres = {k: v for k, v in _read_ids(paths[1]).items() if v < n_genres}
    return Vocabulary(v3, artists, genres)
