"""Loading priors: wrong or damaged files get a clear CheckpointError, fp16 weights and tied tables
are accepted, and the official presets build exactly the official key/shape layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine.errors import CheckpointError
from engine.official.prior_loader import load_prior
from engine.prior.builders import build_prior, prior_config
from engine.prior.presets import PRIOR_KINDS, official_hps
from tests.reference import checkpoint_path, require_fixture, resolved_hps

torch.set_num_threads(2)


def _load(kind: str, path=None):
    return load_prior(path or checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))


def _checkpoint(kind: str) -> dict:
    return torch.load(checkpoint_path(kind), map_location="cpu", weights_only=True)


def _save(tmp_path: Path, name: str, checkpoint: dict) -> Path:
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def test_vqvae_file_is_not_a_prior():
    with pytest.raises(CheckpointError, match=r"expected .*top-level prior.*holds a VQ-VAE"):
        _load("prior_5b", checkpoint_path("vqvae"))


@pytest.mark.parametrize(
    ("file_kind", "as_kind", "found"),
    [
        ("prior_5b", "upsampler_level_0", "top-level prior without lyrics"),
        ("upsampler_level_1", "prior_5b", "upsampler"),
        ("prior_5b_lyrics", "prior_5b", "separate lyric encoder"),
        ("prior_1b_lyrics", "prior_5b_lyrics", "joint lyric\\+music stream"),
        ("prior_5b", "prior_1b_lyrics", "without lyrics"),
    ],
)
def test_prior_loaded_as_the_wrong_kind(file_kind, as_kind, found):
    with pytest.raises(CheckpointError, match=rf"as {as_kind}: expected .*holds .*{found}"):
        _load(as_kind, checkpoint_path(file_kind))


def test_upsampler_level_recorded_in_the_file_is_checked():
    with pytest.raises(CheckpointError, match="level-1 prior, expected level 0"):
        _load("upsampler_level_0", checkpoint_path("upsampler_level_1"))


def test_truncated_file(tmp_path):
    source = checkpoint_path("prior_5b")
    path = tmp_path / "truncated.pth.tar"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated|damaged"):
        _load("prior_5b", path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        _load("prior_5b", tmp_path / "nope.pth.tar")


def test_misshapen_key(tmp_path):
    checkpoint = _checkpoint("prior_5b")
    key = "prior.transformer._attn_mods.0.mlp.c_fc.b"
    checkpoint["model"][key] = torch.zeros(checkpoint["model"][key].shape[0] + 1)
    path = _save(tmp_path, "misshapen.pth.tar", checkpoint)
    with pytest.raises(CheckpointError, match=r"other shapes.*mlp\.c_fc\.b"):
        _load("prior_5b", path)


def test_missing_and_extra_keys(tmp_path):
    checkpoint = _checkpoint("prior_5b")
    del checkpoint["model"]["prior.transformer._attn_mods.1.ln_0.weight"]
    checkpoint["model"]["prior.something_else"] = torch.zeros(3)
    path = _save(tmp_path, "keys.pth.tar", checkpoint)
    with pytest.raises(CheckpointError, match=r"1 missing .*ln_0\.weight.*1 unexpected .*something_else"):
        _load("prior_5b", path)


def test_hps_of_other_sizes_are_rejected():
    hps = dict(resolved_hps("prior_5b"), prior_width=resolved_hps("prior_5b")["prior_width"] * 2)
    with pytest.raises(CheckpointError, match="other shapes"):
        load_prior(checkpoint_path("prior_5b"), "prior_5b", hps, resolved_hps("vqvae"))


def test_tied_tables_must_agree(tmp_path):
    checkpoint = _checkpoint("upsampler_level_0")
    model = checkpoint["model"]
    model["prior.x_out.weight"] = model["prior.x_out.weight"].clone() + 1.0
    path = _save(tmp_path, "untied.pth.tar", checkpoint)
    with pytest.raises(CheckpointError, match="tied"):
        _load("upsampler_level_0", path)


@pytest.mark.parametrize("kind", ("upsampler_level_0", "prior_1b_lyrics"))
def test_tied_output_shares_the_embedding(kind):
    model = _load(kind)
    assert model.prior.x_out.weight is model.prior.x_emb.weight
    assert "prior.x_out.weight" in model.state_dict()


@pytest.mark.parametrize("kind", ("prior_5b", "prior_5b_lyrics"))
def test_fp16_conv_weights_are_upcast_not_rerounded(kind):
    state = _checkpoint(kind)["model"]
    fp16 = [k for k, v in state.items() if v.dtype == torch.float16]
    assert fp16 and all(k.endswith(".w") for k in fp16)
    model = _load(kind)
    loaded = model.state_dict()
    for key, value in state.items():
        assert loaded[key].dtype == torch.float32
        assert torch.equal(loaded[key], value.float()), key


def test_fp32_conv_weights_of_an_fp16_prior_are_rounded_like_the_reference(tmp_path):
    checkpoint = _checkpoint("prior_5b")
    key = "prior.transformer._attn_mods.0.attn.c_attn.w"
    checkpoint["model"][key] = checkpoint["model"][key].float() + 1e-4
    path = _save(tmp_path, "fp32w.pth.tar", checkpoint)
    loaded = _load("prior_5b", path).state_dict()[key]
    assert torch.equal(loaded, checkpoint["model"][key].half().float())


def test_module_prefix_is_stripped(tmp_path):
    checkpoint = _checkpoint("prior_5b")
    checkpoint["model"] = {f"module.{k}": v for k, v in checkpoint["model"].items()}
    path = _save(tmp_path, "ddp.pth.tar", checkpoint)
    assert not _load("prior_5b", path).training


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown prior kind"):
        load_prior(checkpoint_path("prior_5b"), "prior_7b")


def test_copy_of_fixture_loads_from_any_path(tmp_path):
    path = tmp_path / "renamed.bin"
    shutil.copy(checkpoint_path("prior_1b_lyrics"), path)
    assert _load("prior_1b_lyrics", path).config.single_enc_dec


def _official_layout(kind: str) -> dict[str, tuple[tuple[int, ...], str]]:
    layout = {}
    text = (require_fixture() / "official_layout" / f"{kind}.txt").read_text()
    for line in text.splitlines():
        key, shape, dtype = line.split("\t")
        layout[key] = (tuple(int(v) for v in shape.strip("()").split(",") if v.strip()), dtype)
    return layout


@pytest.mark.parametrize("kind", PRIOR_KINDS)
def test_official_presets_build_the_official_layout_on_meta(kind):
    cfg = prior_config(official_hps(kind), official_hps("vqvae"))
    model = build_prior(cfg, device="meta")
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    layout = _official_layout(kind)
    assert state.keys() == layout.keys()
    wrong = [k for k in layout if state[k] != layout[k][0]]
    assert not wrong, wrong[:5]
    fp16 = {k for k, (_, dtype) in layout.items() if dtype == "float16"}
    conv_w = {k for k in layout if k.endswith(".w")}
    assert fp16 == (conv_w if cfg.fp16_params else set())
