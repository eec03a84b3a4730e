"""Re-keying a prior to a retrained VQ-VAE level (`cocompose train prior|upsampler --rekey OLD_VQVAE`).

The equivalence that pins it down: a VQ-VAE whose top codebook is only shuffled encodes every sound as
before under other numbers, so a prior re-keyed to it must predict exactly what the original predicted,
with the numbers changed the same way; an upsampler re-keyed to it must be conditioned exactly as before.
Only codes that the training songs use can be re-keyed (the others keep their rows), so the songs are
what the models read here, and the predictions are compared over the codes the songs use.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cocompose.cli import main
from engine import checkpoint
from engine.data.audio_files import model_frames, read_crop, scan
from engine.training.rekey import changed_levels, code_pairs, rekeyed_rows
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def test_code_pairs_counts_each_frames_old_and_new_code():
    old = [np.array([0, 1, 1, 2]), np.array([2, 2])]
    new = [np.array([1, 0, 0, 2]), np.array([2, 0])]
    counts = code_pairs(old, new, bins=3)
    want = np.zeros((3, 3))
    for a, b in zip(np.concatenate(old), np.concatenate(new), strict=True):
        want[a, b] += 1
    assert np.array_equal(counts, want) and counts.sum() == 6
    with pytest.raises(ValueError, match="differ in length"):
        code_pairs([np.array([0, 1])], [np.array([0])], bins=3)


def test_rekeyed_rows_follow_a_renumbering_exactly_and_average_a_merge_at_the_old_rows_length():
    rows = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    perm = torch.tensor([2, 0, 3, 1])  # new code j is old code perm[j]
    counts = np.zeros((4, 4))
    counts[perm.numpy(), np.arange(4)] = [3, 1, 7, 2]
    assert torch.equal(rekeyed_rows(rows, counts), rows[perm])

    merge = np.zeros((4, 4))
    merge[0, 0], merge[1, 0], merge[2, 2] = 1, 3, 5  # new 0 is old 0 once, old 1 three times; new 1, 3 unseen
    got = rekeyed_rows(rows, merge)
    direction = (rows[0] + 3 * rows[1]) / 4
    length = (rows[0].norm() + 3 * rows[1].norm()) / 4
    assert torch.allclose(got[0], direction / direction.norm() * length, atol=1e-6)
    assert torch.equal(got[2], rows[2])
    assert torch.equal(got[1], rows[1]) and torch.equal(got[3], rows[3])


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """A corpus, a tiny VQ-VAE trained on it, the same VQ-VAE with its top codebook shuffled, and a prior
    and an upsampler trained on the first."""
    root = tmp_path_factory.mktemp("rekey")
    corpus = write_corpus(root / "data", songs=3, seconds=2.0)
    torch.set_num_threads(1)
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(root / "vq"), "--preset", "tiny",
                 "--steps", "2"]) == 0  # fmt: skip
    original = root / "vq" / "model"
    top = json.loads(original.with_suffix(".json").read_text())["config"]["levels"] - 1
    state = load_file(str(original.with_suffix(".safetensors")))
    bins = state[f"bottleneck.level_blocks.{top}.k"].shape[0]
    perm = torch.randperm(bins, generator=torch.Generator().manual_seed(3))
    for name in ("k", "k_sum", "k_elem"):  # new code j is the old code perm[j]
        key = f"bottleneck.level_blocks.{top}.{name}"
        state[key] = state[key][perm].contiguous()
    shuffled_vq = root / "shuffled"
    save_file(state, str(shuffled_vq.with_suffix(".safetensors")))
    shutil.copyfile(original.with_suffix(".json"), shuffled_vq.with_suffix(".json"))
    for kind, level in (("prior", None), ("upsampler", top - 1)):
        extra = [] if level is None else ["--level", str(level)]
        assert main(["train", kind, "--data", str(corpus), "--run", str(root / kind), "--vqvae",
                     str(original), "--preset", "tiny", "--steps", "2", *extra]) == 0  # fmt: skip
    return corpus, original, shuffled_vq, perm, top, root


def _rekeyed(shuffled, kind: str, tmp_path) -> torch.nn.Module:
    """The model re-keyed to the shuffled VQ-VAE, then fine-tuned one step at a negligible rate (a step of
    about 1e-12 per weight: in effect, only re-keyed)."""
    corpus, original, shuffled_vq, _, top, root = shuffled
    extra = [] if kind == "prior" else ["--level", str(top - 1)]
    assert main(["train", kind, "--data", str(corpus), "--run", str(tmp_path / kind), "--vqvae",
                 str(shuffled_vq), "--from", str(root / kind / "model"), "--rekey", str(original),
                 "--set", "lr=1e-12", "--steps", "1", *extra]) == 0  # fmt: skip
    return checkpoint.load_model(tmp_path / kind / "model", "prior").eval()


def _codes(vq_path, audio: torch.Tensor, level: int) -> torch.Tensor:
    vq = checkpoint.load_model(vq_path, "vqvae").eval()
    with torch.no_grad():
        return vq.encode_levels(audio, [level])[level]


def _songs(corpus, sample_rate: int) -> list[torch.Tensor]:
    """Every song of the corpus at the model's rate, as training reads it."""
    songs = []
    for path in sorted(corpus.glob("*.wav")):
        info = scan(path)
        audio = read_crop(path, info, sample_rate, 0, model_frames(info, sample_rate))
        songs.append(torch.from_numpy(np.ascontiguousarray(audio.mean(axis=1)))[None])
    return songs


def _labels(prior) -> torch.Tensor:
    labels = torch.zeros(1, prior.config.label_len, dtype=torch.long)
    labels[0, 0] = 2 * 16000  # total length in samples; offset 0; artist and genre 1
    labels[0, 3:5] = 1
    return labels


def test_a_prior_rekeyed_to_a_shuffled_codebook_predicts_the_same_music_under_the_new_numbers(
    shuffled, tmp_path, capsys
):
    corpus, original, shuffled_vq, perm, top, root = shuffled
    songs = _songs(corpus, checkpoint.load_model(original, "vqvae").sample_rate)
    old_codes, new_codes = _codes(original, songs[0], top), _codes(shuffled_vq, songs[0], top)
    assert torch.equal(perm[new_codes], old_codes)  # the shuffled VQ-VAE hears the same codes, renamed
    used = torch.unique(torch.cat([_codes(shuffled_vq, song, top).reshape(-1) for song in songs]))

    prior = checkpoint.load_model(root / "prior" / "model", "prior").eval()
    rekeyed = _rekeyed(shuffled, "prior", tmp_path)
    assert "re-keyed 1 code table(s)" in capsys.readouterr().out
    n = min(old_codes.shape[1], prior.config.n_ctx)
    labels = _labels(prior)
    with torch.no_grad():
        before = prior.logits(old_codes[:, :n], labels)
        after = rekeyed.logits(new_codes[:, :n], labels)
    assert torch.allclose(after[..., used], before[..., perm[used]], atol=1e-5)
    # everything that does not name a code is the original's
    for key, value in prior.state_dict().items():
        if key not in ("prior.x_emb.weight", "prior.x_out.weight"):  # x_out is x_emb, tied
            assert torch.allclose(rekeyed.state_dict()[key].float(), value.float(), atol=1e-9), key


def test_an_upsampler_rekeyed_to_a_shuffled_level_above_is_conditioned_exactly_as_before(shuffled, tmp_path):
    corpus, original, shuffled_vq, _, top, root = shuffled
    audio = _songs(corpus, checkpoint.load_model(original, "vqvae").sample_rate)[1]
    upper_old, upper_new = _codes(original, audio, top), _codes(shuffled_vq, audio, top)
    own = _codes(original, audio, top - 1)
    assert torch.equal(own, _codes(shuffled_vq, audio, top - 1))  # the level below is untouched
    vqs = [checkpoint.load_model(path, "vqvae") for path in (original, shuffled_vq)]
    assert changed_levels(*vqs) == [top] and changed_levels(vqs[0], vqs[0]) == []

    upsampler = checkpoint.load_model(root / "upsampler" / "model", "prior").eval()
    rekeyed = _rekeyed(shuffled, "upsampler", tmp_path)
    # its own codes kept their rows
    assert torch.allclose(rekeyed.prior.x_emb.weight, upsampler.prior.x_emb.weight, atol=1e-9)
    cfg = upsampler.config
    n_upper = min(upper_old.shape[1], cfg.n_ctx // cfg.cond_downsample)
    labels = _labels(upsampler)
    with torch.no_grad():
        before = upsampler.logits(own[:, : n_upper * cfg.cond_downsample], labels, upper_old[:, :n_upper])
        after = rekeyed.logits(own[:, : n_upper * cfg.cond_downsample], labels, upper_new[:, :n_upper])
    assert torch.allclose(after, before, atol=1e-5)


def test_rekey_needs_a_model_to_fine_tune(shuffled, tmp_path, capsys):
    corpus, original, shuffled_vq, _, _, _ = shuffled
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "p"), "--vqvae",
                 str(shuffled_vq), "--rekey", str(original), "--preset", "tiny", "--steps", "1"
                 ]) == 2  # fmt: skip
    assert "--rekey re-keys the prior or upsampler given by --from" in capsys.readouterr().err


def test_rekey_refuses_a_vqvae_of_another_shape(shuffled, tmp_path, capsys):
    corpus, original, _, _, _, root = shuffled
    other = tmp_path / "other"
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(other), "--preset", "tiny",
                 "--set", "l_bins=32", "--steps", "1"]) == 0  # fmt: skip
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "p"), "--vqvae",
                 str(original), "--from", str(root / "prior" / "model"), "--rekey", str(other / "model"),
                 "--steps", "1"]) == 2  # fmt: skip
    assert "is not the same shape of VQ-VAE as --vqvae" in capsys.readouterr().err
