"""VQ-VAE quality on held-out songs: the paper's Table 1 spectral convergence and Figure 5 codebook usage.

Each song is encoded once; each level's codes are decoded by that level's own decoder (chunked inside
`VQVAE.decode`). The spectral convergence is 20·log10(||S(x̂) - S(x)|| / ||S(x)||) over the whole
held-out set, i.e. `losses.spectral_convergence_db` of a batch holding every song. Summing the squared
norms song by song gives the same number without holding the batch. Long songs are cut into segments
of SEGMENT_SAMPLES that count as separate batch items, so the STFT never spans more than one segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.vqvae import VQVAE
from engine.vqvae.losses import DEFAULT_STFT, stft_magnitude

# About 24 s at 44.1 kHz: the STFT of a segment stays a few hundred MB at most.
SEGMENT_SAMPLES = 1 << 20


@dataclass
class LevelTally:
    """Running sums for one level over the songs seen so far."""

    residual_sq: float = 0.0  # sum of ||S(x̂) - S(x)||²
    target_sq: float = 0.0  # sum of ||S(x)||²
    counts: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))

    def spectral_convergence_db(self) -> float:
        ratio = math.sqrt(self.residual_sq) / max(math.sqrt(self.target_sq), 1e-12)
        return 20.0 * math.log10(max(ratio, 1e-12))

    def entropy_bits(self) -> float:
        return entropy_from_counts(self.counts)


def entropy_from_counts(counts: torch.Tensor) -> float:
    """Entropy in bits of a code histogram (what `losses.codebook_entropy_bits` gives for the codes)."""
    probs = counts / counts.sum().clamp(min=1)
    nonzero = probs[probs > 0]
    return max(0.0, float(-(nonzero * nonzero.log2()).sum()))  # no -0.0 for a single used code


def spectral_sums(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[float, float]:
    """(||S(x̂) - S(x)||², ||S(x)||²) of (1, T) audio, segment by segment."""
    residual = target = 0.0
    for start in range(0, x.shape[1], SEGMENT_SAMPLES):
        piece, piece_hat = x[:, start : start + SEGMENT_SAMPLES], x_hat[:, start : start + SEGMENT_SAMPLES]
        spec = stft_magnitude(piece.float(), *DEFAULT_STFT).double()
        spec_hat = stft_magnitude(piece_hat.float(), *DEFAULT_STFT).double()
        residual += float((spec_hat - spec).pow(2).sum())
        target += float(spec.pow(2).sum())
    return residual, target


class VQVAEEvaluator:
    """Feed songs with `add`; read the per-level results from `tallies`. Keeps each song's top codes."""

    def __init__(self, vqvae: VQVAE):
        self.vqvae = vqvae
        levels, bins = vqvae.config.levels, vqvae.config.l_bins
        self.tallies = [LevelTally(counts=torch.zeros(bins, dtype=torch.float64)) for _ in range(levels)]

    @torch.no_grad()
    def add(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """Measure one (1, T) song; returns its codes per level (bottom first) for the priors."""
        device = self.vqvae.bottleneck.level_blocks[0].k.device
        codes = self.vqvae.encode(audio.to(device))
        length = audio.shape[1]
        for level, (tally, level_codes) in enumerate(zip(self.tallies, codes, strict=True)):
            decoded = self.vqvae.decode(level_codes, level=level)[:, :length].cpu()
            residual, target = spectral_sums(audio, decoded)
            tally.residual_sq += residual
            tally.target_sq += target
            tally.counts += torch.bincount(
                level_codes.reshape(-1).cpu(), minlength=len(tally.counts)
            ).double()
        return [c.cpu() for c in codes]
