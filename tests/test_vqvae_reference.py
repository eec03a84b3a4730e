"""The VQ-VAE loaded from an official-format file reproduces the reference code's outputs.

Every size comes from the fixture's hparams.json, so the same tests pass on any fixture built the same
way (acceptance runs a second one with other sizes and seeds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.official import load_vqvae
from engine.vqvae import losses
from tests.reference import arrays, checkpoint_path, resolved_hps


@pytest.fixture(scope="module")
def model():
    return load_vqvae(checkpoint_path("vqvae"), resolved_hps("vqvae"))


@pytest.fixture(scope="module")
def ref():
    return arrays("vqvae_ref")


def levels(ref) -> list[int]:
    return sorted(int(k.removeprefix("zs_l")) for k in ref if k.startswith("zs_l"))


def test_model_is_eval_float32(model):
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    hps = resolved_hps("vqvae")
    expected, hop = [], 1
    for stride, down in zip(hps["strides_t"], hps["downs_t"], strict=True):
        hop *= stride**down
        expected.append(hop)
    assert model.hop_lengths == tuple(expected)
    assert model.sample_rate == hps["sr"]


def test_encode_reproduces_reference_codes_exactly(model, ref):
    codes = model.encode(torch.from_numpy(ref["x"]))
    assert len(codes) == len(levels(ref))
    for level in levels(ref):
        expected = ref[f"zs_l{level}"]
        got = codes[level].numpy()
        assert got.shape == expected.shape
        # Positions where two codes are within float noise of each other are not a fair test.
        robust = ref[f"code_margin_l{level}"] >= 1e-3
        assert robust.mean() > 0.9
        np.testing.assert_array_equal(got[robust], expected[robust])


def test_encoder_latents_and_dequantized_codes_match(model, ref):
    x = torch.from_numpy(ref["x"])[..., 0].unsqueeze(1)
    for level in levels(ref):
        with torch.no_grad():
            z_e = model.encoders[level](x)
        np.testing.assert_allclose(z_e.numpy(), ref[f"enc_out_l{level}"], atol=2e-5, rtol=1e-5)
        dequant = model.bottleneck.level_blocks[level].decode(torch.from_numpy(ref[f"zs_l{level}"]))
        np.testing.assert_allclose(dequant.numpy(), ref[f"dequant_l{level}"], atol=1e-6)


def test_decode_each_level_matches_reference_within_1e4(model, ref):
    for level in levels(ref):
        audio = model.decode(torch.from_numpy(ref[f"zs_l{level}"]), level)
        expected = ref[f"x_dec_l{level}"][..., 0]
        assert audio.shape == expected.shape
        np.testing.assert_allclose(audio.numpy(), expected, atol=1e-4, rtol=0)


def test_spectral_losses_match_reference(ref):
    x = torch.from_numpy(ref["x"])
    spec = losses.stft_magnitude(x[..., 0], 2048, 240, 1200)
    np.testing.assert_allclose(spec.numpy(), ref["spec_x_nfft2048_hop240_win1200"], rtol=1e-5, atol=1e-4)
    for level in levels(ref):
        x_hat = torch.from_numpy(ref[f"x_dec_l{level}"])
        np.testing.assert_allclose(
            losses.multispectral_loss(x, x_hat).numpy(), ref[f"multispectral_loss_l{level}"], rtol=1e-5
        )
        np.testing.assert_allclose(
            losses.spectral_loss(x, x_hat).numpy(), ref[f"spectral_loss_l{level}"], rtol=1e-5
        )
        np.testing.assert_allclose(
            losses.spectral_convergence(x, x_hat).numpy(), ref[f"spectral_convergence_l{level}"], rtol=1e-5
        )


def test_forward_loss_and_metrics_match_reference(model, ref):
    """The training objective in eval mode (no EMA step), with the fixture's stated bandwidth."""
    out = model(torch.from_numpy(ref["x"]), losses.Bandwidth(l1=0.1, l2=0.01, spec=10.0))
    np.testing.assert_allclose(out.loss.item(), ref["forward_loss"], rtol=1e-5)
    compared = 0
    for key, expected in ref.items():
        if key.startswith("forward_metric_"):
            name = key.removeprefix("forward_metric_")
            np.testing.assert_allclose(out.metrics[name].item(), expected, rtol=1e-5, err_msg=name)
            compared += 1
    assert compared >= 10
    # Eval mode must not have moved the codebooks.
    fresh = load_vqvae(checkpoint_path("vqvae"), resolved_hps("vqvae"))
    for a, b in zip(model.bottleneck.level_blocks, fresh.bottleneck.level_blocks, strict=True):
        assert torch.equal(a.k, b.k)
