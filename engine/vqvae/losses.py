"""Reconstruction and spectral losses of the reference VQ-VAE, plus the paper's quality metrics.

Waveforms are (N, T) or (N, T, C) float tensors; channels are averaged before any STFT. Magnitudes use
torch.stft defaults (centered, reflect padding, periodic Hann window of `win_length` zero-padded to
`n_fft`), as the reference does, so the values here equal its logged losses.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.analysis.mel import mel_filters

# The reference's single-resolution spectral loss and spectral convergence ignore the configured n_fft
# and always use these settings.
DEFAULT_STFT = (2048, 256, 1536)


@dataclass(frozen=True)
class Bandwidth:
    """Dataset statistics that normalise the losses (the reference's `calculate_bandwidth`)."""

    l1: float = 1.0
    l2: float = 1.0
    spec: float = 1.0


def to_mono_2d(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.mean(-1)
    if x.dim() != 2:
        raise ValueError(f"expected audio of shape (N, T) or (N, T, C), got {tuple(x.shape)}")
    return x.float()


def stft_magnitude(x: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """|STFT| of (N, T) audio -> (N, n_fft // 2 + 1, frames)."""
    window = torch.hann_window(win_length, device=x.device)
    spec = torch.stft(x, n_fft, hop_length, win_length, window=window, return_complex=True)
    return spec.abs()


def _item_norm(x: torch.Tensor) -> torch.Tensor:
    """Frobenius norm per batch item."""
    return x.reshape(x.shape[0], -1).pow(2).sum(-1).sqrt()


def spectral_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per item ||S(x) - S(x_hat)||_F at the reference's default STFT."""
    x, x_hat = to_mono_2d(x), to_mono_2d(x_hat)
    return _item_norm(stft_magnitude(x, *DEFAULT_STFT) - stft_magnitude(x_hat, *DEFAULT_STFT))


def multispectral_loss(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    n_ffts=(2048, 1024, 512),
    hops=(240, 120, 50),
    windows=(1200, 600, 240),
) -> torch.Tensor:
    """Per item mean over STFT resolutions of ||S(x) - S(x_hat)||_F."""
    x, x_hat = to_mono_2d(x), to_mono_2d(x_hat)
    losses = [
        _item_norm(stft_magnitude(x, n, h, w) - stft_magnitude(x_hat, n, h, w))
        for n, h, w in zip(n_ffts, hops, windows, strict=True)
    ]
    return sum(losses) / len(losses)


# The log-mel loss: 32 ms windows (a power of two in samples at any rate), a quarter of that apart, 64
# bands from 30 Hz. Its floor, 1e-5 in band energy (about 90 dB below a full-scale sine's), lies below
# the quietest bands of levelled music, so that quiet highs count, and keeps digital silence finite.
LOG_MEL_WINDOW_S = 0.032
LOG_MEL_BANDS = 64
LOG_MEL_FMIN_HZ = 30.0
LOG_MEL_FLOOR = 1e-5


@functools.cache
def _log_mel_filters(sample_rate: int) -> tuple[int, torch.Tensor]:
    """(n_fft, filters) of the log-mel loss at a rate, built once: the loss runs every training step."""
    n_fft = 1 << max(6, round(math.log2(LOG_MEL_WINDOW_S * sample_rate)))
    filters = mel_filters(sample_rate, n_fft, LOG_MEL_BANDS, LOG_MEL_FMIN_HZ).astype(np.float32)
    return n_fft, torch.from_numpy(filters)


def log_mel_loss(x: torch.Tensor, x_hat: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per item mean |log mel(x_hat) - log mel(x)| over bands and frames (natural log of band energy)."""
    return log_mel_distance(log_mel(x, sample_rate), log_mel(x_hat, sample_rate))


def log_mel_distance(mel: torch.Tensor, mel_hat: torch.Tensor) -> torch.Tensor:
    """Per item mean |mel_hat - mel| over bands and frames, of two `log_mel`s.

    The magnitude losses above weigh a band by its energy, so a decoder trained on them alone may drop
    quiet bands (a mix's highs: cymbals, breath, the edge of a note's attack) at little cost; in log
    energy every band counts alike, as it does to a listener and to a classifier of log-mel features.
    """
    return (mel_hat - mel).abs().mean(dim=(1, 2))


def log_mel_dynamics_loss(x: torch.Tensor, x_hat: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per item `log_mel_movement_distance` of the two audios' log mels."""
    return log_mel_movement_distance(log_mel(x, sample_rate), log_mel(x_hat, sample_rate))


def log_mel_movement_distance(mel: torch.Tensor, mel_hat: torch.Tensor) -> torch.Tensor:
    """Per item mean, over mel bands, of |a - â| for two measures of how much a band's log energy moves
    within the crop: its standard deviation over frames and its mean frame-to-frame change.

    A decoder trained frame by frame (every loss above) predicts, where its codes leave the detail
    uncertain, the average of what they could mean: a smoothed band that rises less at a note's attack
    and falls less between notes, so the audio sounds dull and steady. These statistics do not ask where
    each rise falls, only that a band moves as much as the real one does (the moment matching of
    texture synthesis), which the frame-by-frame losses alone cannot reward.
    """

    def movement(bands: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (N, bands, frames)
        return bands.std(dim=2), bands.diff(dim=2).abs().mean(dim=2)

    (spread, change), (spread_hat, change_hat) = movement(mel), movement(mel_hat)
    return ((spread_hat - spread).abs() + (change_hat - change).abs()).mean(dim=1)


def log_mel(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Audio (mixed to mono) -> (N, bands, frames) natural-log mel energies of the log-mel losses."""
    n_fft, filters = _log_mel_filters(sample_rate)
    power = stft_magnitude(to_mono_2d(audio), n_fft, n_fft // 4, n_fft).pow(2)  # (N, bins, frames)
    return torch.log(filters.to(audio.device) @ power + LOG_MEL_FLOOR)


def spectral_convergence(x: torch.Tensor, x_hat: torch.Tensor, epsilon: float = 2e-3) -> torch.Tensor:
    """Per item ||S(x) - S(x_hat)||_F / ||S(x)||_F (0 where the target is silent)."""
    x, x_hat = to_mono_2d(x), to_mono_2d(x_hat)
    spec = stft_magnitude(x, *DEFAULT_STFT)
    target_norm = _item_norm(spec)
    residual_norm = _item_norm(spec - stft_magnitude(x_hat, *DEFAULT_STFT))
    audible = (target_norm > epsilon).float()
    return residual_norm * audible / target_norm.clamp(min=epsilon)


def spectral_convergence_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """The paper's Table 1 measure: 20·log10 of the spectral convergence over the whole batch."""
    x, x_hat = to_mono_2d(x), to_mono_2d(x_hat)
    spec = stft_magnitude(x, *DEFAULT_STFT)
    residual = stft_magnitude(x_hat, *DEFAULT_STFT) - spec
    ratio = residual.pow(2).sum().sqrt() / spec.pow(2).sum().sqrt().clamp(min=1e-12)
    return 20.0 * math.log10(max(float(ratio), 1e-12))


def lmix_loss(
    x: torch.Tensor, x_hat: torch.Tensor, bandwidth: Bandwidth, l1=0.0, l2=1.0, linf=0.02, linf_k=2048
) -> torch.Tensor:
    """The reference's 'lmix': weighted L1 + L2 + mean of the top-k squared errors per item."""
    residual = x_hat - x
    loss = x.new_zeros(())
    if l1:
        loss = loss + l1 * residual.abs().mean() / bandwidth.l1
    if l2:
        loss = loss + l2 * residual.pow(2).mean() / bandwidth.l2
    if linf:
        per_item = residual.pow(2).reshape(x.shape[0], -1)
        top = per_item.topk(min(linf_k, per_item.shape[1]), dim=1).values
        loss = loss + linf * top.mean() / bandwidth.l2
    return loss


def codebook_entropy_bits(codes: torch.Tensor, l_bins: int) -> float:
    """Entropy of the code histogram in bits (the paper's Figure 5 measure; at most log2(l_bins))."""
    counts = torch.bincount(codes.reshape(-1), minlength=l_bins).double()
    probs = counts / counts.sum().clamp(min=1)
    nonzero = probs[probs > 0]
    return float(-(nonzero * nonzero.log2()).sum())


def estimate_bandwidth(x: torch.Tensor) -> Bandwidth:
    """Loss normalisers from training clips (N, T): variance, mean |x|, mean per-clip ||STFT||_F."""
    x = to_mono_2d(x)
    spec = stft_magnitude(x, *DEFAULT_STFT)
    return Bandwidth(
        l1=float(x.abs().mean().clamp(min=1e-8)),
        l2=float(x.var(unbiased=False).clamp(min=1e-8)),
        spec=float(_item_norm(spec).mean().clamp(min=1e-8)),
    )
