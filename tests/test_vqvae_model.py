"""Invariants of the engine's VQ-VAE that hold for any weights: chunking, shapes, codebook updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import AudioInputError
from engine.official.vqvae_loader import official_state_keys, vqvae_config_from_hps
from engine.vqvae import TINY, VQVAE
from engine.vqvae.bottleneck import EMACodebook
from tests.reference import REFERENCE_DIR


def _random_model(seed: int = 0) -> VQVAE:
    """Random weights, with codebooks drawn from the encoders' own outputs so that codes vary."""
    torch.manual_seed(seed)
    model = VQVAE(TINY)
    with torch.no_grad():
        audio = torch.randn(2, TINY.sample_length) * 0.3
        for encoder, codebook in zip(model.encoders, model.bottleneck.level_blocks, strict=True):
            z = encoder(audio.unsqueeze(1))
            codebook.init_from_batch_(z.permute(0, 2, 1).reshape(-1, z.shape[1]))
    return model.eval()


def test_official_preset_has_the_official_layout():
    layout_file = REFERENCE_DIR / "fixture" / "official_layout" / "vqvae.txt"
    if not layout_file.exists():
        pytest.skip("official layout list not available")
    expected = {}
    for line in layout_file.read_text().splitlines():
        key, shape, _ = line.split("\t")
        expected[key] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    with torch.device("meta"):
        model = VQVAE(vqvae_config_from_hps(None))
    ours = {k: tuple(v.shape) for k, v in official_state_keys(model).items()}
    assert ours == expected
    assert model.hop_lengths == (8, 32, 128)


def test_chunked_decode_equals_one_pass():
    model = _random_model()
    torch.manual_seed(1)
    for level, hop in enumerate(model.hop_lengths):
        frames = 40_000 // hop
        codes = torch.randint(0, TINY.l_bins, (2, frames))
        whole = model.decode(codes, level, chunk_samples=1 << 30)
        chunked = model.decode(codes, level, chunk_samples=hop * 37)  # many uneven chunks
        assert whole.shape == (2, frames * hop)
        np.testing.assert_allclose(chunked.numpy(), whole.numpy(), atol=1e-4, rtol=0)


def test_chunked_encode_equals_one_pass():
    model = _random_model()
    torch.manual_seed(2)
    audio = torch.randn(2, 50_000) * 0.3
    whole = model.encode(audio, chunk_samples=1 << 30)
    chunked = model.encode(audio, chunk_samples=4096)
    for a, b in zip(whole, chunked, strict=True):
        assert len(torch.unique(a)) > 5  # the test is meaningless if every frame gets one code
        assert torch.equal(a, b)


def test_encode_any_length_pads_with_silence():
    model = _random_model()
    audio = torch.randn(1, 1000) * 0.3
    codes = model.encode(audio)
    for level, hop in enumerate(model.hop_lengths):
        assert codes[level].shape == (1, -(-1000 // hop))
    top_hop = model.hop_lengths[-1]
    padded = torch.nn.functional.pad(audio, (0, -(-1000 // top_hop) * top_hop - 1000))
    for a, b in zip(codes, model.encode(padded), strict=True):
        assert torch.equal(a, b[:, : a.shape[1]])


def test_bad_audio_gets_clear_errors():
    model = _random_model()
    with pytest.raises(AudioInputError, match="NaN"):
        model.encode(torch.tensor([[0.0, float("nan")] * 200]))
    with pytest.raises(AudioInputError, match="shape"):
        model.encode(torch.zeros(2, 3, 400))
    with pytest.raises(AudioInputError, match="empty"):
        model.encode(torch.zeros(1, 0))
    with pytest.raises(AudioInputError, match="floating"):
        model.encode(torch.zeros(1, 400, dtype=torch.int16))
    with pytest.raises(ValueError, match="codes must lie"):
        model.decode(torch.full((1, 4), TINY.l_bins), 0)
    with pytest.raises(ValueError, match="level"):
        model.decode(torch.zeros(1, 4, dtype=torch.long), TINY.levels)


def test_codebook_restart_sticks():
    """A dead code is restarted at a batch vector and stays there while that vector keeps using it."""
    torch.manual_seed(3)
    book = EMACodebook(l_bins=8, emb_width=4, mu=0.99, threshold=1.0)
    data = torch.randn(64, 4)
    book.init_from_batch_(data)
    book.k[5] = 100.0  # code 5 is far from everything: nobody picks it
    book.k_sum[5] = 100.0
    book.k_elem[5] = 1.0
    codes, _ = book.quantize(data)
    book.update_(data, codes)
    assert book.k_elem[5] >= book.threshold  # restarted, not dead
    restarted = book.k[5].clone()
    assert torch.isclose(data, restarted, atol=0.05).all(-1).any()  # at (a noisy copy of) a batch vector
    torch.testing.assert_close(book.k, book.k_sum / book.k_elem[:, None])
    # Feed the batch again: the restarted code wins its own vector and does not snap back to 100.
    for _ in range(3):
        codes, _ = book.quantize(data)
        book.update_(data, codes)
    assert (book.k[5] - restarted).abs().max() < 1.0
    assert book.k[5].abs().max() < 10


def test_straight_through_gradients_reach_encoder_not_codebook():
    model = VQVAE(TINY).train()
    torch.manual_seed(4)
    audio = torch.randn(2, TINY.sample_length) * 0.2
    from engine.vqvae.losses import Bandwidth

    out = model(audio, Bandwidth())
    out.loss.backward()
    for encoder in model.encoders:
        grads = [p.grad for p in encoder.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(not b.requires_grad for b in model.bottleneck.buffers())
    assert all(bool(cb.initialized) for cb in model.bottleneck.level_blocks)


def test_eval_forward_leaves_codebooks_alone():
    model = _random_model()
    before = [cb.k.clone() for cb in model.bottleneck.level_blocks]
    from engine.vqvae.losses import Bandwidth

    model(torch.randn(1, 4096) * 0.2, Bandwidth())
    for b, cb in zip(before, model.bottleneck.level_blocks, strict=True):
        assert torch.equal(b, cb.k)


def test_a_forward_of_some_levels_is_those_levels_of_the_full_forward():
    """A fine-tune of the top decoder alone optimises exactly the top level's terms of the full loss."""
    from engine.vqvae.losses import Bandwidth

    model = _random_model()
    audio = torch.randn(2, 4096, generator=torch.Generator().manual_seed(2)) * 0.2
    full = model(audio, Bandwidth(), frozen_codes=True)
    top = model(audio, Bandwidth(), frozen_codes=True, levels=(2,))
    assert full.levels == (0, 1, 2) and top.levels == (2,)
    assert torch.equal(top.x_hat[0], full.x_hat[2]) and torch.equal(top.codes[0], full.codes[2])
    terms = ("recons_loss", "spectral_loss", "multispectral_loss")
    c = model.config
    expected = (
        full.metrics["recons_loss_l3"]
        + c.spectral * full.metrics["spectral_loss_l3"]
        + c.multispectral * full.metrics["multispectral_loss_l3"]
        + c.commit * full.metrics["commit_loss_l3"]
    )
    torch.testing.assert_close(top.loss, expected)
    assert all(f"{t}_l3" in top.metrics and f"{t}_l1" not in top.metrics for t in terms)


@pytest.mark.parametrize("fields", [("log_mel",), ("log_mel_dynamics",), ("log_mel", "log_mel_dynamics")])
def test_log_mel_terms_add_their_weight_times_each_levels_loss(fields):
    """With log_mel and/or log_mel_dynamics set, a forward of the upper two levels (their encoders too: a
    retrain of them) optimises the reference's terms plus each weight times that loss of each level's
    audio (both terms share each audio's mel energies, computed once)."""
    from engine.vqvae import losses

    loss_of = {"log_mel": losses.log_mel_loss, "log_mel_dynamics": losses.log_mel_dynamics_loss}
    weights = dict(zip(fields, (0.5, 0.25), strict=False))
    plain = _random_model().eval()
    weighed = _random_model().eval()
    weighed.config = weighed.config.with_overrides(**weights)
    audio = torch.randn(2, 4096, generator=torch.Generator().manual_seed(3)) * 0.2
    before = plain(audio, losses.Bandwidth(), levels=(1, 2))
    after = weighed(audio, losses.Bandwidth(), levels=(1, 2))
    assert after.levels == (1, 2)
    added = torch.zeros(())
    for field, weight in weights.items():
        for index, level in enumerate(after.levels):
            torch.testing.assert_close(after.x_hat[index], before.x_hat[index])
            assert f"{field}_loss_l{level + 1}" not in before.metrics
            expected = loss_of[field](audio, before.x_hat[index], weighed.config.sample_rate).mean()
            assert float(expected.detach()) > 0
            torch.testing.assert_close(after.metrics[f"{field}_loss_l{level + 1}"], expected)
            added = added + weight * expected
    torch.testing.assert_close(after.loss, before.loss + added)
    for field in fields:
        with pytest.raises(ValueError, match=f"{field} is a loss weight"):
            weighed.config.with_overrides(**{field: -1.0})


def _numpy_log_mel(audio: np.ndarray, rate: int) -> np.ndarray:
    """(frames, bands) log mel energies as the log-mel losses compute them, written out in numpy."""
    from engine.analysis.mel import mel_filters
    from engine.vqvae.losses import LOG_MEL_BANDS, LOG_MEL_FLOOR, LOG_MEL_FMIN_HZ

    n_fft = 512  # LOG_MEL_WINDOW_S at 16 kHz
    padded = np.pad(audio, n_fft // 2, mode="reflect")  # torch.stft's centring
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[:: n_fft // 4]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.log(power @ mel_filters(rate, n_fft, LOG_MEL_BANDS, LOG_MEL_FMIN_HZ).T + LOG_MEL_FLOOR)


def test_log_mel_loss_is_the_mean_absolute_difference_of_log_band_energies():
    """Against a direct numpy computation: the same frames, filters and floor; halving the audio costs
    log 4 in every band and frame (far above the floor)."""
    from engine.vqvae.losses import log_mel_loss

    rate = 16000
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 4000)) * 0.3
    expected = np.abs(_numpy_log_mel(y, rate) - _numpy_log_mel(x, rate)).mean()
    got = log_mel_loss(torch.tensor(x[None]), torch.tensor(y[None]), rate)
    assert got.shape == (1,) and abs(float(got[0]) - expected) < 1e-4 * expected
    halved = log_mel_loss(torch.tensor(x[None]), torch.tensor(x[None] * 0.5), rate)
    assert abs(float(halved[0]) - np.log(4.0)) < 1e-3


def test_log_mel_dynamics_loss_compares_how_much_each_band_moves_not_where():
    """Against numpy: per band, |spread over frames| and |mean frame-to-frame change| differences,
    averaged over bands. It asks only how much a band moves: a louder copy (every log energy shifted
    alike) and the audio played backwards (the same values, in reverse) cost nothing, though the frame
    by frame log-mel loss charges both; the same noise held steady instead of pulsing costs."""
    from engine.vqvae.losses import log_mel_dynamics_loss, log_mel_loss

    rate = 16000
    rng = np.random.default_rng(5)
    n = 64 * 128 + 1  # played backwards, every frame (hop 128) lands on a frame of the original
    noise = rng.standard_normal(n) * 0.3
    pulsing = noise * (0.55 + 0.45 * np.sin(np.arange(n) / n * 2 * np.pi * 6))  # six swells
    other = rng.standard_normal(n) * 0.2

    def direct(a, b):
        mel_a, mel_b = _numpy_log_mel(a, rate), _numpy_log_mel(b, rate)
        spread = np.abs(mel_b.std(axis=0, ddof=1) - mel_a.std(axis=0, ddof=1))
        change = np.abs(
            np.abs(np.diff(mel_b, axis=0)).mean(axis=0) - np.abs(np.diff(mel_a, axis=0)).mean(axis=0)
        )
        return (spread + change).mean()

    def dynamics(a, b):
        return float(log_mel_dynamics_loss(torch.tensor(a[None]), torch.tensor(b[None]), rate)[0])

    expected = direct(pulsing, other)
    assert abs(dynamics(pulsing, other) - expected) < 1e-4 * expected
    assert dynamics(pulsing, 3.0 * pulsing) < 1e-4
    reversed_ = np.ascontiguousarray(pulsing[::-1])
    assert dynamics(pulsing, reversed_) < 1e-3
    assert float(log_mel_loss(torch.tensor(pulsing[None]), torch.tensor(reversed_[None]), rate)[0]) > 0.1
    assert dynamics(pulsing, noise) > 0.1
