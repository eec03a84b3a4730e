"""The VQ-VAE training step learns: overfitting a couple of seconds of synthetic music on the CPU."""

from __future__ import annotations

import math

import pytest
import torch

from engine.vqvae import TINY, VQVAE, losses
from engine.vqvae.training import make_optimizer, train_step


def _synthetic_melody(seconds: float, sample_rate: int) -> torch.Tensor:
    """Plucked harmonic notes of an arpeggio with a little noise: structured, but not trivial."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    notes = [220.0, 277.2, 329.6, 440.0, 392.0, 329.6, 277.2, 246.9]
    audio = torch.zeros_like(t)
    length = len(t) // len(notes)
    for i, freq in enumerate(notes):
        span = slice(i * length, (i + 1) * length)
        local = t[span] - t[span][0]
        partials = sum(0.3 / h * torch.sin(2 * math.pi * freq * h * local) for h in range(1, 5))
        audio[span] = torch.exp(-3 * local) * partials
    return audio + 0.01 * torch.randn(audio.shape, generator=generator)


@pytest.mark.slow
def test_overfitting_halves_the_multispectral_loss_and_keeps_codes_in_use(one_thread):
    torch.manual_seed(0)
    config = TINY
    audio = _synthetic_melody(2.0, config.sample_rate)
    crop = config.sample_length
    held = torch.stack([audio[i : i + crop] for i in range(0, len(audio) - crop, crop)])
    bandwidth = losses.estimate_bandwidth(held)
    model = VQVAE(config)
    optimizer = make_optimizer(model, lr=1e-3)

    def multispectral() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(held, bandwidth).metrics["multispectral_loss"])

    start = multispectral()
    crops = torch.Generator().manual_seed(1)
    for _ in range(120):
        offsets = torch.randint(0, len(audio) - crop, (2,), generator=crops)
        metrics = train_step(model, optimizer, torch.stack([audio[i : i + crop] for i in offsets]), bandwidth)
    end = multispectral()

    assert end <= 0.5 * start, f"multispectral loss went {start:.3f} -> {end:.3f}"
    for level in range(config.levels):
        alive = metrics[f"usage_l{level + 1}"]
        assert alive >= 0.8 * config.l_bins, f"level {level}: only {alive} of {config.l_bins} codes alive"
    codes = model.eval().encode(audio[None])
    for level, level_codes in enumerate(codes):
        bits = losses.codebook_entropy_bits(level_codes, config.l_bins)
        assert bits >= 0.5 * math.log2(config.l_bins), f"level {level}: code entropy {bits:.2f} bits"


def test_codebook_entropy_bits_is_the_histogram_entropy():
    assert losses.codebook_entropy_bits(torch.arange(16), 16) == pytest.approx(4.0)
    assert losses.codebook_entropy_bits(torch.zeros(100, dtype=torch.long), 16) == pytest.approx(0.0)
    assert losses.codebook_entropy_bits(torch.tensor([0, 0, 1, 1]), 16) == pytest.approx(1.0)


def test_spectral_convergence_db_is_minus_infinity_like_for_perfect_and_zero_for_silence():
    x = torch.randn(2, 8192)
    assert losses.spectral_convergence_db(x, x) <= -200
    assert losses.spectral_convergence_db(x, torch.zeros_like(x)) == pytest.approx(0.0, abs=1e-4)
    assert losses.spectral_convergence_db(x, 0.9 * x) == pytest.approx(20 * math.log10(0.1), abs=1e-3)


def test_nan_loss_is_reported_not_trained_on():
    model = VQVAE(TINY)
    optimizer = make_optimizer(model)
    with torch.no_grad():
        model.decoders[0].out.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="learning rate"):
        train_step(model, optimizer, torch.randn(1, TINY.sample_length) * 0.1, losses.Bandwidth())
