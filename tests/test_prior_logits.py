"""Every prior loaded from an official-format file reproduces the reference's full-window outputs:
logits, conditioning, per-item losses and lyric alignment weights.

All sizes come from the fixture's hparams.json, so a second fixture with other sizes passes too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.official.prior_loader import load_prior
from tests.reference import arrays, checkpoint_path, resolved_hps

torch.set_num_threads(2)

PRIORS = ("upsampler_level_0", "upsampler_level_1", "prior_5b", "prior_5b_lyrics", "prior_1b_lyrics")
LYRIC_PRIORS = ("prior_5b_lyrics", "prior_1b_lyrics")


def _load(kind: str):
    return load_prior(checkpoint_path(kind), kind, resolved_hps(kind), resolved_hps("vqvae"))


def _inputs(ref: dict, i: int | slice):
    sl = slice(i, i + 1) if isinstance(i, int) else i
    upper = torch.from_numpy(ref["z_cond"][sl]) if "z_cond" in ref else None
    return torch.from_numpy(ref["z"][sl]), torch.from_numpy(ref["y"][sl]), upper


def _first_diverging_layer(model, ref, tol=1e-5) -> str:
    z, y, upper = _inputs(ref, 0)
    with torch.no_grad():
        states = model.hidden_states(z, y, upper)
    for d, h in enumerate(states):
        key = f"layer_out_{d:02d}"
        if key in ref:
            err = (h - torch.from_numpy(ref[key])).abs().max().item()
            if err > tol:
                return f"first diverging block {d} (max abs err {err:.3g})"
    return "all blocks agree"


@pytest.mark.parametrize("kind", PRIORS)
def test_model_is_eval_float32(kind):
    model = _load(kind)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("kind", PRIORS)
def test_logits_match_reference(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    for i in range(ref["z"].shape[0]):
        with torch.no_grad():
            logits = model.logits(*_inputs(ref, i))
        expected = torch.from_numpy(ref["preds"][i])
        assert logits.shape[1:] == expected.shape
        err = (logits[0] - expected).abs().max().item()
        assert err <= 1e-4, f"{kind} item {i}: max abs err {err:.3g}; {_first_diverging_layer(model, ref)}"


@pytest.mark.parametrize("kind", PRIORS)
def test_batched_logits_match_per_item(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    with torch.no_grad():
        batched = model.logits(*_inputs(ref, slice(None)))
    np.testing.assert_allclose(batched.numpy(), ref["preds"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", PRIORS)
def test_hidden_states_match_reference_blocks(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    assert _first_diverging_layer(model, ref) == "all blocks agree"


@pytest.mark.parametrize("kind", PRIORS)
def test_conditioning_matches_reference(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    z, y, upper = _inputs(ref, slice(None))
    with torch.no_grad():
        cond = model.conditioning(y, upper)
    np.testing.assert_allclose(cond.start.numpy(), ref["y_cond"], atol=1e-5, rtol=0)
    music_cond = cond.x_cond[:, cond.x_cond.shape[1] - z.shape[1] :]
    np.testing.assert_allclose(music_cond.numpy(), ref["x_cond"], atol=1e-5, rtol=0)
    if model.config.single_enc_dec:
        assert bool((cond.x_cond[:, : model.config.n_tokens] == 0).all())
    if "encoder_kv" in ref:
        np.testing.assert_allclose(cond.encoder_kv.numpy(), ref["encoder_kv"], atol=1e-5, rtol=0)
    if "prime_layer_out_00" in ref:
        states: list[torch.Tensor] = []
        with torch.no_grad():
            model.lyric_encoder_states(cond.lyrics[:1], hidden_states=states)
        for d, h in enumerate(states):
            expected = ref[f"prime_layer_out_{d:02d}"]
            np.testing.assert_allclose(h.numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", PRIORS)
def test_losses_match_reference(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    with torch.no_grad():
        losses = model.loss(*_inputs(ref, slice(None)))
    for name in ("loss", "gen_loss", "prime_loss"):
        assert losses[name].shape == ref[name].shape
        np.testing.assert_allclose(losses[name].numpy(), ref[name], atol=1e-4, rtol=0, err_msg=name)


@pytest.mark.parametrize("kind", LYRIC_PRIORS)
def test_alignment_weights_match_reference(kind):
    model, ref = _load(kind), arrays(f"{kind}_ref")
    z, y, _ = _inputs(ref, slice(None))
    with torch.no_grad():
        all_heads = model.alignment_weights(z, y, all_heads=True)
        head = model.alignment_weights(z, y)
    np.testing.assert_allclose(all_heads.numpy(), ref["align_attn_w"], atol=1e-5, rtol=0)
    expected_head = ref["align_attn_w"][:, resolved_hps(kind)["alignment_head"]]
    np.testing.assert_allclose(head.numpy(), expected_head, atol=1e-5, rtol=0)


def test_1b_stream_is_lyrics_then_shifted_codes():
    kind = "prior_1b_lyrics"
    model, ref = _load(kind), arrays(f"{kind}_ref")
    hps = resolved_hps(kind)
    assert model.config.vocab_shift == hps["n_vocab"]
    assert model.config.bins == hps["n_vocab"] + resolved_hps("vqvae")["l_bins"]
    z, y, _ = _inputs(ref, 0)
    with torch.no_grad():
        logits = model.logits(z, y)
    assert logits.shape == (1, hps["n_tokens"] + z.shape[1], model.config.bins)
    assert model.music_logits(logits).shape[-1] == resolved_hps("vqvae")["l_bins"]


def test_bad_inputs_are_rejected_with_clear_errors():
    kind = "prior_5b"
    model, ref = _load(kind), arrays(f"{kind}_ref")
    z, y, _ = _inputs(ref, 0)
    with pytest.raises(ValueError, match="labels must be"):
        model.logits(z, y[:, :-1])
    with pytest.raises(ValueError, match="music codes"):
        model.logits(z + resolved_hps("vqvae")["l_bins"], y)
    too_short = y.clone()
    too_short[:, 0] = 1  # a 1-sample song is shorter than min_duration
    with pytest.raises(ValueError, match="total_length"):
        model.logits(z, too_short)
