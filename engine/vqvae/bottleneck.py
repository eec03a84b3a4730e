"""The VQ bottleneck: one EMA codebook per level (paper section 2.1 and 3.1).

Nearest-neighbour quantization with straight-through gradients; the codebook never receives gradients
and is instead updated as an exponential moving average of the encoder vectors assigned to each code.
Codes whose EMA usage falls under the revival threshold are restarted at random encoder vectors from
the batch.

Unlike the reference, a restart resets the code's EMA sums together with the code itself. The
reference only replaces `k`, and the next update recomputes `k = k_sum / k_elem` from the old sums,
so a restarted code snaps back to where it died. Resetting all three keeps the restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine import distributed


@dataclass
class QuantizerOutput:
    codes: torch.Tensor  # (N, T) int64
    z_q: torch.Tensor  # (N, E, T) quantized latents, straight-through in training
    commit_loss: torch.Tensor  # () mean squared distance between z_e and sg(z_q)
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class EMACodebook(nn.Module):
    def __init__(self, l_bins: int, emb_width: int, mu: float = 0.99, threshold: float = 1.0):
        super().__init__()
        self.l_bins = l_bins
        self.emb_width = emb_width
        self.mu = mu
        self.threshold = threshold
        # `k` is the only buffer the official checkpoints hold; the EMA state is ours, saved in our own
        # format so that training resumes exactly.
        self.register_buffer("k", torch.zeros(l_bins, emb_width))
        self.register_buffer("k_sum", torch.zeros(l_bins, emb_width))
        self.register_buffer("k_elem", torch.zeros(l_bins))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    # --- inference -------------------------------------------------------------------------------

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, E) vectors -> nearest code ids (M,) and their squared distances (M,).

        The distance is expanded as |x|^2 - 2 x.k + |k|^2 in float32, the reference's exact arithmetic,
        so that codes match it bit for bit.
        """
        z = z.float()
        k_t = self.k.float().t()
        distance = z.pow(2).sum(-1, keepdim=True) - 2 * (z @ k_t) + k_t.pow(2).sum(0, keepdim=True)
        min_distance, codes = distance.min(dim=-1)
        return codes, min_distance

    def encode(self, z_e: torch.Tensor) -> torch.Tensor:
        """(N, E, T) latents -> (N, T) codes."""
        N, E, T = z_e.shape
        codes, _ = self.quantize(z_e.permute(0, 2, 1).reshape(N * T, E))
        return codes.view(N, T)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, T) codes -> (N, E, T) latents."""
        return F.embedding(codes, self.k).permute(0, 2, 1).contiguous()

    # --- training --------------------------------------------------------------------------------

    def forward(self, z_e: torch.Tensor, update: bool) -> QuantizerOutput:
        N, E, T = z_e.shape
        z = z_e.permute(0, 2, 1).reshape(N * T, E).float()
        if update and not bool(self.initialized):
            self.init_from_batch_(z)
        codes, min_distance = self.quantize(z)
        z_q = F.embedding(codes, self.k)
        metrics = {"fit": min_distance.mean()}
        if update:
            metrics.update(self.update_(z, codes))
        commit_loss = (z_q.detach() - z).pow(2).mean()
        z_q = z + (z_q - z).detach()  # straight-through estimator
        z_q = z_q.view(N, T, E).permute(0, 2, 1).contiguous().to(z_e.dtype)
        return QuantizerOutput(codes.view(N, T), z_q, commit_loss, metrics)

    def _random_vectors(self, z: torch.Tensor) -> torch.Tensor:
        """l_bins random rows of the batch, tiled with a little noise when the batch is smaller."""
        M, E = z.shape
        if M < self.l_bins:
            repeats = (self.l_bins + M - 1) // M
            z = z.repeat(repeats, 1)
            z = z + torch.randn_like(z) * (0.01 / E**0.5)
        picked = z[torch.randperm(z.shape[0], device=z.device)[: self.l_bins]]
        return distributed.broadcast_(picked.contiguous())

    @torch.no_grad()
    def init_from_batch_(self, z: torch.Tensor) -> None:
        picked = self._random_vectors(z)
        self.k.copy_(picked)
        self.k_sum.copy_(picked)
        self.k_elem.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def restore_(self, tokens_per_batch: float | None = None) -> None:
        """Seed the EMA state from a trained codebook (fine-tuning a loaded model).

        Each code is given the usage it would have if the batch's tokens were spread evenly.
        """
        usage = 1.0 if tokens_per_batch is None else tokens_per_batch / self.l_bins
        self.k_sum.copy_(self.k * usage)
        self.k_elem.fill_(usage)
        self.initialized.fill_(True)

    @torch.no_grad()
    def update_(self, z: torch.Tensor, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        one_hot = torch.zeros(self.l_bins, z.shape[0], device=z.device)
        one_hot.scatter_(0, codes.view(1, -1), 1.0)
        batch_sum = distributed.all_reduce_(one_hot @ z)  # (K, E)
        batch_elem = distributed.all_reduce_(one_hot.sum(-1))  # (K,)
        replacements = self._random_vectors(z)

        old_k = self.k.clone()
        self.k_sum.mul_(self.mu).add_(batch_sum, alpha=1 - self.mu)
        self.k_elem.mul_(self.mu).add_(batch_elem, alpha=1 - self.mu)
        alive = self.k_elem >= self.threshold
        dead = ~alive
        # Restart dead codes consistently: the code, its sum and its count all move together.
        self.k_sum[dead] = replacements[dead] * self.threshold
        self.k_elem[dead] = self.threshold
        self.k.copy_(self.k_sum / self.k_elem.unsqueeze(1))

        probs = batch_elem / batch_elem.sum()
        return {
            "entropy": -(probs * torch.log(probs + 1e-8)).sum(),
            "used_curr": (batch_elem >= self.threshold).sum().float(),
            "usage": alive.sum().float(),
            "dk": torch.linalg.vector_norm(self.k - old_k) / old_k.numel() ** 0.5,
        }


class Bottleneck(nn.Module):
    def __init__(self, levels: int, l_bins: int, emb_width: int, mu: float, threshold: float):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EMACodebook(l_bins, emb_width, mu, threshold) for _ in range(levels)
        )
