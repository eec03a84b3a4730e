"""Artist/genre ids and the integer label vector every Jukebox prior is conditioned on.

Label vector of one item (int64):
`[total_length, offset, sample_length, artist, genre x max_bow, lyrics x n_tokens]`,
with unused genre slots set to -1 and the lyric slots holding a window of the full lyric token list. A prior
with a beat clock (ours only) takes three more entries before the lyrics: tempo, beats per bar, anchor.

Id lists are text files of `name;id` lines (`v2_artist_ids.txt`, `v2_genre_ids.txt`, `v3_...`) shipped
with the official models; names are lowercased on load and several names may share one id. The
upsamplers, 5b and 5b_lyrics use v2 lists; 1b_lyrics uses v3 lists, so one song gets different label
vectors per level.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch

from engine.prior.config import CLOCK_SLOTS
from engine.prior.tempo import NO_CLOCK_SLOTS, BeatClock
from engine.prior.text import PAD_ID, lyrics_vocab

UNKNOWN_ID = 0
EMPTY_GENRE_SLOT = -1
LYRIC_PAD_INDEX = -1  # window index of a padding slot (lyrics shorter than the window)

_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_UNDERSCORE_RUNS = re.compile(r"_+")


def normalise_v2(name: str) -> str:
    """v2 key of a name: lowercase, anything but ASCII [a-z0-9] -> `_`, runs collapsed, ends stripped.

    Accented letters become `_` too, so "Céline Dion" -> "c_line_dion" (that is how the v2 list spells it).
    """
    return _UNDERSCORE_RUNS.sub("_", _NOT_ALNUM.sub("_", name.lower())).strip("_")


class NameTable:
    """One id list: lookup by key (unknown -> 0) and nearest-name suggestions for the UI/CLI."""

    def __init__(self, ids: Mapping[str, int], source: str, normalise) -> None:
        self._ids = dict(ids)
        self.source = source
        self._normalise = normalise

    @classmethod
    def from_file(cls, path: Path, normalise) -> NameTable:
        ids: dict[str, int] = {}
        for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            name, sep, number = line.rpartition(";")
            if not sep:
                raise ValueError(f"{path}:{line_no}: expected 'name;id', got {raw!r}")
            # Later duplicates win, as in the reference's dict fill (v3 artists list one name twice).
            ids[name.lower()] = int(number)
        return cls(ids, str(path), normalise)

    def key(self, name: str) -> str:
        return self._normalise(name)

    def __contains__(self, name: str) -> bool:
        return self.key(name) in self._ids

    def __len__(self) -> int:
        """Number of distinct keys (a name listed twice counts once)."""
        return len(self._ids)

    @property
    def max_id(self) -> int:
        return max(self._ids.values(), default=UNKNOWN_ID)

    def id_of(self, name: str) -> int:
        """Id of a name after this table's normalisation; unknown names get 0 ("unknown")."""
        return self._ids.get(self.key(name), UNKNOWN_ID)

    def id_of_key(self, key: str) -> int:
        return self._ids.get(key, UNKNOWN_ID)

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Up to n known keys closest to the name (difflib ratio), best first; [] when nothing is close."""
        return difflib.get_close_matches(self.key(name), self._ids.keys(), n=n, cutoff=0.6)


def _lowercase(name: str) -> str:
    return name.lower()


@dataclass(frozen=True)
class ArtistGenreIds:
    """The artist and genre tables of one label version (v2 or v3)."""

    v3: bool
    artists: NameTable
    genres: NameTable

    def artist_id(self, artist: str) -> int:
        return self.artists.id_of(artist)

    def genre_words(self, genre: str) -> list[str]:
        """v2: the bag of words of the normalised genre; v3: the whole lowercased genre as one entry."""
        return [genre.lower()] if self.v3 else normalise_v2(genre).split("_")

    def genre_ids(self, genre: str, max_bow: int) -> list[int]:
        """Ids of the genre words (unknown words -> 0), at most max_bow of them."""
        words = self.genre_words(genre)
        if len(words) > max_bow:
            raise ValueError(
                f"genre {genre!r} splits into {len(words)} words {words}, but this model takes at most "
                f"{max_bow}; use fewer words"
            )
        return [self.genres.id_of_key(word) for word in words]


@cache
def load_artist_genre_ids(ids_dir: str | Path, v3: bool) -> ArtistGenreIds:
    """Read `{v2|v3}_{artist|genre}_ids.txt` from a folder (the model folder at run time)."""
    folder = Path(ids_dir)
    version = "v3" if v3 else "v2"
    normalise = _lowercase if v3 else normalise_v2
    artists = NameTable.from_file(folder / f"{version}_artist_ids.txt", normalise)
    # v2 genre keys are single words; genre_ids() looks words up by key, suggest() normalises free text.
    genres = NameTable.from_file(folder / f"{version}_genre_ids.txt", normalise)
    return ArtistGenreIds(v3=v3, artists=artists, genres=genres)


def lyric_window(
    full_tokens: Sequence[int],
    n_tokens: int,
    total_length: int,
    offset: int,
    duration: int,
    float32: bool = False,
) -> tuple[list[int], list[int]]:
    """The n_tokens lyric ids (and their indices) seen by a `duration`-sample window at `offset` of the song.

    Short lyrics are left-padded with id 0 (index -1). Otherwise the window is centred on the character
    proportional to the window's midpoint in the song, clamped so it stays inside the lyrics.

    `float32=True` reproduces the per-window path of the reference (`get_y` -> `set_y_lyric_tokens`), where
    the label entries are 0-dim int64 tensors, so `len * (offset + duration / 2) / total` runs in float32; the
    first labelling (`get_batch_labels`) gets Python ints and runs in float64. Both truncate toward zero.
    """
    n_full = len(full_tokens)
    if n_full < n_tokens:
        pad = n_tokens - n_full
        return [PAD_ID] * pad + list(full_tokens), [LYRIC_PAD_INDEX] * pad + list(range(n_full))
    if not 0 <= offset < total_length:
        raise ValueError(f"window offset {offset} is outside the song's total length {total_length}")
    if float32:
        f = np.float32
        centre = f(n_full) * (f(offset) + f(duration) / f(2.0)) / f(total_length)
    else:
        centre = n_full * (offset + duration / 2.0) / total_length
    half = n_tokens // 2
    mid = min(max(int(centre), half), n_full - half)
    indices = list(range(mid - half, mid + half))
    return [int(full_tokens[i]) for i in indices], indices


@dataclass(frozen=True)
class LabelConfig:
    """What one prior's label vector looks like; sample_length = n_ctx * raw_to_tokens of that prior."""

    v3: bool
    max_bow: int
    n_tokens: int
    sample_length: int
    beat_clock: bool = False  # the vector carries a beat clock's entries (`engine.prior.beat_clock`)

    @property
    def label_len(self) -> int:
        return 4 + self.max_bow + (CLOCK_SLOTS if self.beat_clock else 0) + self.n_tokens


@dataclass(frozen=True)
class Label:
    """One item's label vector with the full lyric token list and which of them the window holds.

    blend: (other artist id, weight w) with 0 < w < 1 when the artist embedding is a mix of y's artist
    and another one, (1 - w) * e(artist) + w * e(other); the label vector itself has no slot for it.
    """

    y: list[int]
    full_tokens: list[int]
    lyric_indices: list[int]
    blend: tuple[int, float] | None = None


def check_blend_weight(weight: float) -> float:
    weight = float(weight)
    if not 0.0 <= weight <= 1.0:  # also rejects NaN
        raise ValueError(f"an artist blend weight must be between 0 and 1, not {weight}")
    return weight


def with_blend(label: Label, other_artist_id: int, weight: float) -> Label:
    """The label with another artist mixed in at `weight`: w = 0 keeps the label as it is, w = 1 makes it
    the plain label of the other artist (so both ends are exactly the unblended priors)."""
    weight = check_blend_weight(weight)
    if weight == 0.0:
        return replace(label, blend=None)
    if weight == 1.0:
        y = list(label.y)
        y[3] = int(other_artist_id)
        return replace(label, y=y, blend=None)
    return replace(label, blend=(int(other_artist_id), weight))


def blend_rows(labels: Sequence[Label]) -> torch.Tensor | None:
    """(N, 2) float32 rows [other artist id, weight] for a batch of labels, or None when none blends.

    An unblended label in a blended batch gets [its own artist, 0], which mixes to its plain embedding.
    """
    if all(label.blend is None for label in labels):
        return None
    rows = [[label.y[3], 0.0] if label.blend is None else list(label.blend) for label in labels]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(labels), 2)


def label_from_ids(
    config: LabelConfig,
    artist_id: int,
    genre_ids: Sequence[int],
    full_tokens: Sequence[int],
    total_length: int,
    offset: int,
    clock: BeatClock | None = None,
) -> Label:
    """Label vector from ids and an already tokenised lyric list (first labelling: float64 window).

    clock: the song's beat clock, for a prior that has one (None: no clock, the song's tempo is unknown);
    a prior without one has nowhere to put it and is labelled as if none were given."""
    if len(genre_ids) > config.max_bow:
        raise ValueError(f"{len(genre_ids)} genre ids given, this model takes at most {config.max_bow}")
    genres = list(genre_ids) + [EMPTY_GENRE_SLOT] * (config.max_bow - len(genre_ids))
    if config.n_tokens > 0:
        tokens, indices = lyric_window(
            full_tokens, config.n_tokens, total_length, offset, config.sample_length
        )
    else:
        tokens, indices = [], []
    y = [
        int(total_length),
        int(offset),
        int(config.sample_length),
        int(artist_id),
        *map(int, genres),
        *(() if not config.beat_clock else NO_CLOCK_SLOTS if clock is None else clock.slots()),
        *tokens,
    ]
    return Label(y=y, full_tokens=[int(t) for t in full_tokens], lyric_indices=indices)


def build_label(
    config: LabelConfig,
    ids: ArtistGenreIds,
    artist: str,
    genre: str,
    lyrics: str,
    total_length: int,
    offset: int,
    clock: BeatClock | None = None,
) -> Label:
    """Label of one item from human-readable names and raw lyrics (what the reference's `get_label` does);
    clock: see `label_from_ids`."""
    if ids.v3 != config.v3:
        raise ValueError("id tables and label config disagree on the label version (v2/v3)")
    full_tokens = lyrics_vocab(config.v3).encode(lyrics)
    return label_from_ids(
        config,
        ids.artist_id(artist),
        ids.genre_ids(genre, config.max_bow),
        full_tokens,
        total_length,
        offset,
        clock,
    )


def build_batch_labels(
    config: LabelConfig, ids: ArtistGenreIds, metas: Iterable[Mapping]
) -> tuple[torch.Tensor, list[Label]]:
    """`(N, label_len)` int64 labels for metas with keys artist, genre, lyrics, total_length, offset."""
    labels = [
        build_label(config, ids, m["artist"], m["genre"], m["lyrics"], m["total_length"], m["offset"])
        for m in metas
    ]
    y = torch.tensor([label.y for label in labels], dtype=torch.int64).reshape(len(labels), config.label_len)
    return y, labels
