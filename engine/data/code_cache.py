"""Codes of every training song, encoded once, so that a prior's training step need not run the VQ-VAE.

Encoding a batch of crops costs more than the prior's own step for the small CPU models (the top-level
encoder alone takes about three quarters of the step), and the codes of a song never change while a
prior trains on a frozen VQ-VAE. So each song is encoded whole, once per level, and a training crop slices
the codes. Whole-song codes also avoid the crop-edge effects of encoding a short crop: they are the codes
the model sees when it continues a song in the app.

Crops start on a multiple of the top level's hop so that the slices of every level line up. Stereo songs
are encoded from the plain average of their channels: the cache trades the paper's random downmix for
speed (use `cache_codes=false` to keep it).

The cache lives beside the data (DATA/.code-cache/) and is keyed by what makes the codes (the VQ-VAE's
encoders and codebooks, and its shape apart from the decoders and loss weights), the level and the list
of songs. So the top prior and the upsamplers of one model share it, a VQ-VAE whose decoders alone were
fine-tuned or grown (the same codes) reuses it, and a retrained VQ-VAE never reads stale codes. Files
are written atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from engine import checkpoint
from engine.data.audio_files import read_crop
from engine.data.dataset import Crop, CropDataset
from engine.vqvae import VQVAE
from engine.vqvae.config import DECODER_SIZE_FIELDS, OBJECTIVE_FIELDS

CACHE_DIR = ".code-cache"


# Config fields that never change a code: the decoders' size and the training loss's weights.
_DECODING_FIELDS = OBJECTIVE_FIELDS | DECODER_SIZE_FIELDS


def vqvae_key(vqvae: VQVAE) -> str:
    """A digest of what decides the codes (encoders, codebooks, and the shape that runs them): cached
    codes belong to exactly one encoding, whatever the decoders that go with it."""
    shape = {k: v for k, v in sorted(vqvae.config.to_dict().items()) if k not in _DECODING_FIELDS}
    digest = hashlib.sha256(repr(shape).encode())
    for name, tensor in sorted(vqvae.state_dict().items()):
        if not name.startswith(("encoders.", "bottleneck.")):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _songs_key(dataset: CropDataset) -> str:
    digest = hashlib.sha256()
    for song in dataset.songs:
        stat = song.record.path.stat()
        digest.update(f"{song.record.path.name}|{stat.st_size}|{song.total_length}".encode())
    return digest.hexdigest()[:16]


class CodeCache:
    """Whole-song codes of the given levels: `codes[level][song]` is a 1-D int64 array."""

    def __init__(self, codes: dict[int, list[np.ndarray]], hop_lengths: Sequence[int]):
        self.codes = codes
        self.hop_lengths = tuple(hop_lengths)

    @classmethod
    def build(
        cls,
        dataset: CropDataset,
        vqvae: VQVAE,
        levels: Sequence[int],
        device: torch.device | str = "cpu",
        say: Callable[[str], None] = print,
        cache_dir: Path | None = None,
    ) -> CodeCache:
        """Load the codes from DATA/.code-cache or encode every song and save them there."""
        root = cache_dir or (dataset.songs[0].record.path.parent / CACHE_DIR)
        model_key, songs_key = vqvae_key(vqvae), _songs_key(dataset)
        codes = {}
        for level in levels:
            path = root / f"{model_key}-{songs_key}-level{level}.npz"
            codes[level] = _load(path, len(dataset.songs))
            if codes[level] is None:
                say(f"encoding {len(dataset.songs)} songs at level {level} once (cached in {root})")
                codes[level] = [
                    _encode_song(dataset, index, vqvae, level, device) for index in range(len(dataset))
                ]
                root.mkdir(parents=True, exist_ok=True)
                _save(path, codes[level])
        return cls(codes, vqvae.hop_lengths)

    def crop(self, level: int, crop: Crop, n_codes: int) -> np.ndarray:
        """n_codes codes of `level` from the crop's start (zero codes past the song's end, which is what
        encoding the zero padding of a short crop gives only approximately; songs shorter than a crop are
        rare in practice)."""
        song = self.codes[level][crop.song]
        start = crop.offset // self.hop_lengths[level]
        piece = song[start : start + n_codes]
        if len(piece) < n_codes:
            piece = np.concatenate([piece, np.zeros(n_codes - len(piece), dtype=piece.dtype)])
        return piece


def aligned(crop: Crop, top_hop: int) -> Crop:
    """The crop moved back to the nearest multiple of the top hop, where the codes of every level start."""
    return Crop(crop.song, crop.offset - crop.offset % top_hop, crop.blend)


@torch.no_grad()
def _encode_song(dataset: CropDataset, index: int, vqvae: VQVAE, level: int, device) -> np.ndarray:
    song = dataset.songs[index]
    top_hop = vqvae.hop_lengths[-1]
    length = max(song.total_length, dataset.sample_length)
    padded = -(-length // top_hop) * top_hop
    audio = read_crop(song.record.path, song.info, dataset.sample_rate, 0, padded).mean(axis=1)
    # VQVAE.encode_levels chunks long audio with each chunk's receptive field, which bounds the memory of
    # the activations and gives the same codes as one pass.
    tensor = torch.from_numpy(np.ascontiguousarray(audio))[None].to(device)
    return vqvae.encode_levels(tensor, [level])[level][0].cpu().numpy()


def _load(path: Path, n_songs: int) -> list[np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            songs = [data[f"song{i}"] for i in range(n_songs)]
    except (OSError, KeyError, ValueError):
        return None  # damaged or from another song list: encode again
    return songs


def _save(path: Path, songs: list[np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **{f"song{i}": codes for i, codes in enumerate(songs)})

    checkpoint.atomic_write(path, write)
