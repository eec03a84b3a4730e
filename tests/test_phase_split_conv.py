"""The phase-split transposed convolution is `nn.ConvTranspose1d` by another route: the same parameters,
the same outputs and gradients to float rounding, and PyTorch's own path where the split does not fit.
Composed with the projection after it (the VQ-VAE decoders' last two steps), it gives the two steps'
result, the first and last samples included."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from engine.phase_split_conv import PhaseSplitConvTranspose1d, upsample_then_project
from engine.vqvae import TINY, VQVAE


def _pair(c_in, c_out, kernel, stride, padding, bias, seed):
    torch.manual_seed(seed)
    plain = nn.ConvTranspose1d(c_in, c_out, kernel, stride, padding, bias=bias).double()
    split = PhaseSplitConvTranspose1d(c_in, c_out, kernel, stride, padding, bias=bias).double()
    split.load_state_dict(plain.state_dict())
    return plain, split


@settings(max_examples=25, deadline=None)
@given(
    stride=st.integers(1, 4),
    padding=st.integers(0, 2),
    c_in=st.integers(1, 5),
    c_out=st.integers(1, 5),
    frames=st.integers(1, 17),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_outputs_and_gradients_equal_the_transposed_convolutions(
    stride, padding, c_in, c_out, frames, bias, seed
):
    # Every kernel whose output is `stride` times the input long: kernel = stride + 2 * padding.
    plain, split = _pair(c_in, c_out, stride + 2 * padding, stride, padding, bias, seed)
    assert split._splits()
    x = torch.randn(2, c_in, frames, dtype=torch.float64, requires_grad=True)
    expected, got = plain(x), split(x)
    assert got.shape == expected.shape == (2, c_out, frames * stride)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    upstream = torch.randn_like(expected)
    want = torch.autograd.grad(expected, [x, plain.weight], upstream)
    have = torch.autograd.grad(got, [x, split.weight], upstream)
    for a, b in zip(have, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_the_vqvae_shape_in_float32_matches_to_rounding():
    """The decoders' case (kernel 4, stride 2, padding 1), at the width and length a preview decodes."""
    torch.manual_seed(0)
    plain = nn.ConvTranspose1d(32, 64, 4, 2, 1)
    split = PhaseSplitConvTranspose1d(32, 64, 4, 2, 1)
    split.load_state_dict(plain.state_dict())
    x = torch.randn(2, 32, 4000)
    with torch.no_grad():
        torch.testing.assert_close(split(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "options"),
    [(6, 3, 1, {}), (5, 2, 1, {}), (4, 2, 1, {"output_padding": 1}), (4, 2, 1, {"dilation": 2}),
     (4, 2, 1, {"groups": 2})],
)  # fmt: skip
def test_shapes_the_split_does_not_fit_run_as_pytorch_runs_them(kernel, stride, padding, options):
    torch.manual_seed(1)
    plain = nn.ConvTranspose1d(4, 6, kernel, stride, padding, **options)
    split = PhaseSplitConvTranspose1d(4, 6, kernel, stride, padding, **options)
    split.load_state_dict(plain.state_dict())
    assert not split._splits()
    x = torch.randn(1, 4, 9)
    torch.testing.assert_close(split(x), plain(x), rtol=0, atol=0)


def test_parameters_keep_the_names_and_shapes_checkpoints_hold():
    plain, split = _pair(3, 5, 4, 2, 1, True, 0)
    assert {k: v.shape for k, v in split.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    assert isinstance(split, nn.ConvTranspose1d)  # the VQ-VAE grow code and converters see one


@settings(max_examples=30, deadline=None)
@given(
    stride=st.integers(1, 4),
    padding=st.integers(0, 2),
    half=st.integers(0, 2),
    mid=st.integers(1, 6),
    c_out=st.integers(1, 3),
    frames=st.integers(1, 9),
    biases=st.tuples(st.booleans(), st.booleans()),
    seed=st.integers(0, 2**16),
)
def test_upsampling_then_projecting_in_one_convolution_equals_the_two_steps(
    stride, padding, half, mid, c_out, frames, biases, seed
):
    up = _pair(3, mid, stride + 2 * padding, stride, padding, biases[0], seed)[1]
    out = nn.Conv1d(mid, c_out, 2 * half + 1, 1, half, bias=biases[1]).double()
    x = torch.randn(2, 3, frames, dtype=torch.float64)
    with torch.no_grad():
        expected = out(up(x))
        got = upsample_then_project(up, out, x)
    assert got.shape == expected.shape == (2, c_out, frames * stride)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_the_vqvae_decoders_decode_as_the_two_steps_would():
    """Decoding (no gradients) takes the composed route; training (gradients on) the two steps: the
    audio is the same to float rounding at every level, ends included."""
    torch.manual_seed(3)
    model = VQVAE(TINY).eval()
    for decoder in model.decoders:
        latents = torch.randn(2, TINY.emb_width, 7)
        with torch.no_grad():
            composed = decoder(latents)
        two_steps = decoder(latents)
        assert two_steps.requires_grad and composed.shape == two_steps.shape
        torch.testing.assert_close(composed, two_steps.detach(), rtol=1e-5, atol=1e-6)
