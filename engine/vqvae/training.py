"""One optimisation step of the VQ-VAE, shared by the training entry points and the tests."""

from __future__ import annotations

import torch

from engine.vqvae import losses
from engine.vqvae.model import VQVAE


def make_optimizer(model: VQVAE, lr: float = 3e-4, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW with the reference's betas/eps; the codebooks are buffers, so they are not optimised."""
    return torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay
    )


def train_step(
    model: VQVAE,
    optimizer: torch.optim.Optimizer,
    audio: torch.Tensor,
    bandwidth: losses.Bandwidth,
    clip: float = 1.0,
) -> dict[str, float]:
    """Forward, backward, clip, step. `audio` is a (N, T) batch of crops at the model's rate.

    Returns the scalar metrics of this step (losses per level, codebook statistics, gradient norm).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    out = model(audio, bandwidth)
    if not torch.isfinite(out.loss):
        raise FloatingPointError(f"VQ-VAE loss became {out.loss.item()}; lower the learning rate")
    out.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    metrics = {name: float(value) for name, value in out.metrics.items()}
    metrics["loss"] = float(out.loss.detach())
    metrics["grad_norm"] = float(grad_norm)
    return metrics
