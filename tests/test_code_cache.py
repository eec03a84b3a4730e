"""The prior's code cache: cached crops are the whole-song codes, the cache is reused and keyed by the
VQ-VAE, and a cached training run resumes bit-exactly like an uncached one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from engine import checkpoint
from engine.data.code_cache import CACHE_DIR, CodeCache, aligned
from engine.data.dataset import CropDataset
from engine.vqvae import TINY, VQVAE
from engine.vqvae.grow import grow_decoders
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("cache") / "data", songs=3, seconds=2.0)


def _dataset(corpus) -> CropDataset:
    return CropDataset(corpus, TINY.sample_rate, 4096, report=lambda _m: None)


def test_cached_crops_are_slices_of_the_whole_song_codes_and_the_cache_is_reused(corpus, tmp_path):
    torch.manual_seed(0)
    vqvae = VQVAE(TINY).eval()
    dataset = _dataset(corpus)
    said: list[str] = []
    cache = CodeCache.build(dataset, vqvae, [1, 2], say=said.append, cache_dir=tmp_path)
    assert len(said) == 2 and len(list(tmp_path.glob("*.npz"))) == 2

    top_hop = vqvae.hop_lengths[-1]
    for crop in dataset.plan(step=3, batch_size=4, seed=0):
        crop = aligned(crop, top_hop)
        assert crop.offset % top_hop == 0
        song = dataset.songs[crop.song]
        audio = dataset.load(crop.__class__(crop.song, 0, 0.5))  # mono corpus: the blend is irrelevant
        whole = torch.from_numpy(np.pad(audio, (0, max(0, song.total_length - len(audio)))))
        for level in (1, 2):
            hop = vqvae.hop_lengths[level]
            expected = vqvae.encode_levels(whole[None], [level])[level][0].numpy()
            got = cache.crop(level, crop, 8)
            np.testing.assert_array_equal(got, expected[crop.offset // hop : crop.offset // hop + 8])

    again: list[str] = []
    reloaded = CodeCache.build(dataset, vqvae, [1, 2], say=again.append, cache_dir=tmp_path)
    assert again == []  # read from disk, nothing encoded
    for level in (1, 2):
        for a, b in zip(cache.codes[level], reloaded.codes[level], strict=True):
            np.testing.assert_array_equal(a, b)

    # Decoders grown and a loss weight changed: the same codes (as the decoder fine-tunes keep them), so
    # the cache serves that VQ-VAE as it is.
    regrown = grow_decoders(vqvae, (2, 1, 2))
    regrown.config = replace(regrown.config, multispectral=3.0)
    for level in (1, 2):
        assert torch.equal(
            regrown.encode_levels(whole[None], [level])[level],
            vqvae.encode_levels(whole[None], [level])[level],
        )
    CodeCache.build(dataset, regrown, [1, 2], say=again.append, cache_dir=tmp_path)
    assert again == []

    with torch.no_grad():
        vqvae.bottleneck.level_blocks[2].k.add_(0.5)  # another encoding: its codes must not be reused
    CodeCache.build(dataset, vqvae, [2], say=again.append, cache_dir=tmp_path)
    assert len(again) == 1


def test_a_cached_prior_run_learns_and_resumes_bit_exactly(corpus, tmp_path, capsys):
    run_vq = tmp_path / "vqvae"
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(run_vq), "--preset", "tiny",
                 "--steps", "1"]) == 0  # fmt: skip

    def train(run, *extra):
        vqvae = str(run_vq / "model")
        return main(["train", "prior", "--data", str(corpus), "--run", str(run), "--vqvae", vqvae,
                     "--preset", "tiny", "--set", "cache_codes=true", *extra])  # fmt: skip

    assert train(tmp_path / "straight", "--steps", "4") == 0
    assert "encoding 3 songs at level 2 once" in capsys.readouterr().out
    assert (corpus / CACHE_DIR).is_dir()
    assert train(tmp_path / "resumed", "--steps", "2") == 0
    assert "encoding" not in capsys.readouterr().out  # the second run reads the cache
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "resumed"), "--resume",
                 "--steps", "4"]) == 0  # fmt: skip
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    assert checkpoint.load_model(tmp_path / "straight" / "model", "prior").config.level == 2
