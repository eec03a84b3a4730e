"""Random training crops from a folder of songs (paper section 5.1: random crops, random mono downmix).

The crops of global step `s` are a pure function of (seed, s): a resumed run continues with exactly
the crops it would have seen, and the data order needs no state beyond the step counter. Under
DistributedDataParallel every rank plans the same global batch and loads only its own slice, so N
processes see the same global batch as one.

Only what a crop covers is read from disk (see `audio_files`), so the corpus never has to fit in RAM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.audio_files import AudioInfo, UnreadableAudio, downmix, model_frames, read_crop, scan
from engine.data.metadata import SongRecord, read_metadata

# Seed streams of the start-of-song draws (`start_share`) and of the artist-change draws (`change_share`),
# apart from the crops' own stream.
START_STREAM = 7
CHANGE_STREAM = 11


@dataclass(frozen=True)
class Song:
    record: SongRecord
    info: AudioInfo
    total_length: int  # samples at the model's rate


@dataclass(frozen=True)
class Crop:
    song: int  # index into CropDataset.songs
    offset: int  # first sample of the crop at the model's rate
    blend: float  # weight of the left channel in the mono downmix


class CropDataset:
    def __init__(
        self,
        data_dir: str | Path,
        sample_rate: int,
        sample_length: int,
        metadata: str | Path | None = None,
        report: Callable[[str], None] = print,
        start_share: float = 0.0,
        change_share: float = 0.0,
    ):
        if sample_length <= 0:
            raise ValueError(f"sample_length must be positive, got {sample_length}")
        if not 0.0 <= start_share <= 1.0:
            raise ValueError(f"start_share is a share of crops, between 0 and 1; got {start_share}")
        if not 0.0 <= change_share <= 1.0:
            raise ValueError(f"change_share is a share of crops, between 0 and 1; got {change_share}")
        self.sample_rate = sample_rate
        self.sample_length = sample_length
        self.start_share = start_share
        self.change_share = change_share
        records = read_metadata(data_dir, metadata)
        self.songs: list[Song] = []
        self.skipped: list[tuple[Path, str]] = []
        for record in records:
            try:
                info = scan(record.path)
            except UnreadableAudio as exc:
                self.skipped.append((record.path, str(exc)))
                report(f"skipping {record.path.name}: {exc}")
                continue
            self.songs.append(Song(record, info, max(1, model_frames(info, sample_rate))))
        if not self.songs:
            raise ValueError(
                f"no usable audio file in {data_dir}: all {len(records)} listed files were skipped "
                "(see the messages above)"
            )
        lengths = np.array([song.total_length for song in self.songs], dtype=np.float64)
        # Songs are drawn in proportion to their length, so every second of audio is equally likely.
        self._weights = lengths / lengths.sum()

    def __len__(self) -> int:
        return len(self.songs)

    def plan(self, step: int, batch_size: int, seed: int) -> list[Crop]:
        """The global batch of step `step`: which song, where, and which downmix, for every item.

        Offsets are uniform over each song, except that a `start_share` of the crops begin at its first
        sample: a prior that composes from nothing starts there, with only its labels to tell it the
        tempo and metre, and uniform crops show it a song's first half second in about 2% of crops.
        """
        rng = np.random.default_rng([seed, step])
        picks = rng.choice(len(self.songs), size=batch_size, p=self._weights)
        crops = []
        for index in picks:
            room = self.songs[index].total_length - self.sample_length
            offset = int(rng.integers(0, room + 1)) if room > 0 else 0
            crops.append(Crop(int(index), offset, float(rng.random())))
        if self.start_share > 0:
            # A stream of its own, so that start_share = 0 plans exactly the crops it always did.
            draws = np.random.default_rng([seed, step, START_STREAM]).random(batch_size)
            first = draws < self.start_share
            crops = [Crop(c.song, 0, c.blend) if f else c for c, f in zip(crops, first, strict=True)]
        if self.change_share > 0:
            crops = self._across_changes(crops, np.random.default_rng([seed, step, CHANGE_STREAM]))
        return crops

    def _across_changes(self, crops: list[Crop], rng: np.random.Generator) -> list[Crop]:
        """A `change_share` of the crops of songs whose artist changes (not those at a song's start) moved
        so that they hold one of its changes, at a uniform place: where the app samples after a change,
        the change lies anywhere in the window the prior reads, from its end (just changed) back."""
        planned = []
        for crop in crops:
            draw, pick, place = rng.random(), rng.random(), rng.random()
            song = self.songs[crop.song]
            changes = song.record.artist_changes
            if not changes or crop.offset == 0 or draw >= self.change_share:
                planned.append(crop)
                continue
            at = round(changes[int(pick * len(changes))][0] * self.sample_rate)
            room = max(0, song.total_length - self.sample_length)
            offset = at - 1 - int(place * (self.sample_length - 1))  # the change at or before the last sample
            planned.append(Crop(crop.song, min(max(offset, 0), room), crop.blend))
        return planned

    def load(self, crop: Crop) -> np.ndarray:
        song = self.songs[crop.song]
        audio = read_crop(song.record.path, song.info, self.sample_rate, crop.offset, self.sample_length)
        return downmix(audio, crop.blend)

    def batch(
        self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> tuple[torch.Tensor, list[Crop]]:
        """This rank's slice of step `step`'s global batch: audio (batch_size / world_size, T)."""
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} must be divisible by the {world_size} processes")
        per_rank = batch_size // world_size
        crops = self.plan(step, batch_size, seed)[rank * per_rank : (rank + 1) * per_rank]
        audio = np.stack([self.load(crop) for crop in crops])
        return torch.from_numpy(audio), crops
