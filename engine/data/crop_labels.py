"""Label vectors of training crops: `[total_length, offset, sample_length, artist, genres, lyric window]`
(and a beat clock's entries before the lyrics, for a prior that has one).

Each crop gets the label the reference's labeller gives it (total length and offset in samples at the
model's rate, the lyric window centred on the crop's share of the song). In a song whose artist changes
(a duet) the artist is the one playing at the crop's end, as the app labels what it samples after a
change, and the codes before that artist took over are not scored (`first_scored`): the prior learns to
play the new artist from a context of the old one, never that the new artist's label sounds like the old.
Top priors also embed the timing, whose range is fixed by the model (min/max duration): a song outside it
is labelled with the nearest length inside, because one odd file must not stop a training run the way
the reference's assertion would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from engine.data.dataset import Crop, CropDataset
from engine.data.vocabulary import Vocabulary
from engine.prior.labels import LabelConfig, label_from_ids
from engine.prior.tempo import BeatClock
from engine.prior.text import lyrics_vocab


@dataclass(frozen=True)
class TimingRange:
    min_samples: int  # shortest total_length the timing embedding accepts
    max_samples: int  # total_length and offset + sample_length must stay below this


@dataclass
class CropLabeller:
    config: LabelConfig
    vocabulary: Vocabulary
    dataset: CropDataset
    timing: TimingRange | None = None

    @cached_property
    def _lyric_tokens(self) -> list[list[int]]:
        encoder = lyrics_vocab(self.config.v3)
        return [encoder.encode(song.record.lyrics) for song in self.dataset.songs]

    def _timing(self, total: int, offset: int) -> tuple[int, int]:
        if self.timing is None:
            return total, offset
        t = self.timing
        total = min(max(total, t.min_samples), t.max_samples - 1)
        offset = min(offset, max(0, t.max_samples - self.config.sample_length), total - 1)
        return total, offset

    def _changes(self, crop: Crop) -> tuple[str, int]:
        """The artist playing at the crop's last sample, and where in the crop (in samples) that artist
        took over: 0 when it played from the crop's first sample on."""
        record = self.dataset.songs[crop.song].record
        last = crop.offset + self.config.sample_length - 1
        playing, since = record.artist, 0
        for start_s, name in record.artist_changes:
            at = round(start_s * self.dataset.sample_rate)
            if at > last:
                break
            playing, since = name, max(0, at - crop.offset)
        return playing, since

    def first_scored(self, crops: list[Crop], hop: int) -> list[int]:
        """Per crop, the first of its codes (of `hop` samples each) that is scored: that of the last artist
        change inside the crop (the code the change falls in: it holds the new artist), else 0."""
        return [self._changes(crop)[1] // hop for crop in crops]

    def labels(self, crops: list[Crop]) -> torch.Tensor:
        """(N, label_len) int64 labels of the crops."""
        rows = []
        for crop in crops:
            song = self.dataset.songs[crop.song]
            total, offset = self._timing(song.total_length, crop.offset)
            label = label_from_ids(
                self.config,
                self.vocabulary.artist_id(self._changes(crop)[0]),
                self.vocabulary.genre_ids(song.record.genre, self.config.max_bow),
                self._lyric_tokens[crop.song],
                total,
                offset,
                _clock(song.record),
            )
            rows.append(label.y)
        return torch.tensor(rows, dtype=torch.int64).reshape(len(crops), self.config.label_len)


def _clock(record) -> BeatClock | None:
    """The song's beat clock, bars counted from its first sample (None when its tempo is unknown)."""
    if record.tempo_bpm is None:
        return None
    return BeatClock(record.tempo_bpm, record.beats_per_bar or 4)
