"""Held-out songs read one at a time, whole, at the model's rate.

The corpus folder is indexed with the training pipeline's `CropDataset` (same metadata rules, same
skipping of unusable files, same soxr resampling), so evaluation sees songs exactly as training would.
Only one song is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from engine.data.audio_files import downmix, read_crop
from engine.data.dataset import CropDataset

# Stereo is averaged (blend 0.5): evaluation must not depend on a random downmix.
EVAL_BLEND = 0.5


def open_corpus(data_dir: str | Path, sample_rate: int, report: Callable[[str], None] = print) -> CropDataset:
    """Index the held-out folder; raises ValueError/FileNotFoundError for a missing or empty corpus."""
    # sample_length only matters for training crops; 1 keeps every song, however short, usable.
    return CropDataset(data_dir, sample_rate, sample_length=1, report=report)


def song_audio(dataset: CropDataset, index: int) -> torch.Tensor:
    """Song `index` as (1, T) float32 mono at the dataset's rate."""
    song = dataset.songs[index]
    audio = read_crop(song.record.path, song.info, dataset.sample_rate, 0, song.total_length)
    return torch.from_numpy(downmix(audio, EVAL_BLEND)).unsqueeze(0)


def iter_songs(dataset: CropDataset) -> Iterator[tuple[int, torch.Tensor]]:
    for index in range(len(dataset)):
        yield index, song_audio(dataset, index)
