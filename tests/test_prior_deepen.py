"""A prior deepened (`engine.prior.deepen`) computes exactly what it did until it trains; a fine-tune with
`--set prior_depth=N` trains the new layers and resumes bit-exactly."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from cocompose.models import DEFAULT_MODEL_DIR
from engine import checkpoint
from engine.prior.deepen import with_depth
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def _window(cfg):
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx), generator=generator)
    clock = [12_000, 4, 0]  # 120 bpm in 4/4, for a prior with a beat clock (cut off for one without)
    labels = torch.tensor(
        [[30 * 16000, 0, 16000 * 30 - cfg.n_ctx * 128, 1, 2, *clock], [20 * 16000, 0, 0, 3, 1, *clock]]
    )
    return codes, labels[:, : cfg.label_len]


def test_a_deepened_prior_scores_and_samples_exactly_as_before_and_keeps_every_old_weight():
    prior = checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior").eval()
    cfg = prior.config
    deep = with_depth(prior, cfg.transformer.depth + 3)
    funcs = cfg.transformer.attn_funcs
    assert deep.config.transformer.attn_funcs == (*funcs, *funcs[:3]), "the stack's pattern, repeated"
    assert deep.config.labels == cfg.labels and not deep.training
    old = prior.state_dict()
    for key, value in old.items():
        assert torch.equal(deep.state_dict()[key], value), key
    assert len(deep.state_dict()) > len(old)

    codes, labels = _window(cfg)
    with torch.no_grad():
        assert torch.equal(deep.logits(codes, labels), prior.logits(codes, labels))
        # the cached, token-by-token path too: the same seeds draw the same codes
        drawn = prior.sample(labels[:1], 40, seeds=[5, 6], prefix=codes[:1, :20]).codes
        assert torch.equal(deep.sample(labels[:1], 40, seeds=[5, 6], prefix=codes[:1, :20]).codes, drawn)
    assert with_depth(prior, cfg.transformer.depth) is prior


def test_a_deepened_upsampler_scores_exactly_as_before_from_the_same_codes_above():
    """Upsamplers are priors with a conditioner on the level above: deepening keeps the conditioner and
    every old layer, so the same codes above give the same logits."""
    upsampler = checkpoint.load_model(DEFAULT_MODEL_DIR / "upsampler_level_1", "prior").eval()
    cfg = upsampler.config
    deep = with_depth(upsampler, cfg.transformer.depth + 2)
    assert deep.config.conditioner == cfg.conditioner
    generator = torch.Generator().manual_seed(1)
    codes = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx), generator=generator)
    upper = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx // cfg.cond_downsample), generator=generator)
    labels = torch.tensor([[30 * 16000, 0, 0, 1, 2], [20 * 16000, 0, 16000, 3, 1]])[:, : cfg.label_len]
    with torch.no_grad():
        assert torch.equal(deep.logits(codes, labels, upper), upsampler.logits(codes, labels, upper))


def test_a_prior_cannot_lose_layers():
    prior = checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior")
    depth = prior.config.transformer.depth
    with pytest.raises(ValueError, match=f"has {depth} layers; a fine-tune can add layers"):
        with_depth(prior, depth - 1)


def _train(corpus, vqvae, run_dir, *extra) -> int:
    data = ["--data", str(corpus), "--vqvae", str(vqvae)]
    return main(["train", "prior", *data, "--run", str(run_dir), *extra])


def test_a_fine_tune_deepens_the_prior_from_where_it_was_trains_the_new_layers_and_resumes_exactly(
    tmp_path, capsys
):
    corpus = write_corpus(tmp_path / "data", songs=3, seconds=2.0)
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(tmp_path / "vqvae"),
                 "--preset", "tiny", "--steps", "1"]) == 0  # fmt: skip
    vqvae = tmp_path / "vqvae" / "model"
    assert _train(corpus, vqvae, tmp_path / "base", "--preset", "tiny", "--steps", "1") == 0
    base = tmp_path / "base" / "model"
    depth = checkpoint.load_model(base, "prior").config.transformer.depth

    def first_loss(run, *settings) -> str:
        capsys.readouterr()
        assert _train(corpus, vqvae, tmp_path / run, "--preset", "tiny", "--from", str(base), *settings,
                      "--steps", "1", "--set", "lr=0.01") == 0  # fmt: skip
        out = capsys.readouterr().out
        return re.search(r"^step 1/1 loss ([\d.e+-]+)", out, re.M).group(1), out

    deep_loss, said = first_loss("deep_once", "--set", f"prior_depth={depth + 4}")
    assert deep_loss == first_loss("same_once")[0], "the new layers start as identities"
    assert f"4 layers added on top ({depth + 4} in all)" in said

    deeper = f"prior_depth={depth + 4}"
    deepen = ("--preset", "tiny", "--from", str(base), "--set", deeper, "--set", "lr=0.01")
    assert _train(corpus, vqvae, tmp_path / "straight", *deepen, "--steps", "4") == 0
    assert _train(corpus, vqvae, tmp_path / "resumed", *deepen, "--steps", "2") == 0
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "resumed"), "--resume",
                 "--steps", "4"]) == 0  # fmt: skip
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    tuned = checkpoint.load_model(tmp_path / "straight" / "model", "prior")
    assert tuned.config.transformer.depth == depth + 4
    new_layer = tuned.prior.transformer._attn_mods[depth]
    assert new_layer.attn.c_proj.w.abs().sum() > 0 and new_layer.mlp.c_proj.w.abs().sum() > 0, "trained"

    capsys.readouterr()
    assert _train(corpus, vqvae, tmp_path / "shallow", *deepen[:4], "--set", f"prior_depth={depth - 1}") != 0
    assert f"has {depth} layers; a fine-tune can add layers" in capsys.readouterr().err
