"""The VQ-VAE's decoder loss with a critic: its usual reconstruction losses, plus a hinge GAN loss and
feature matching against `SpectrogramDiscriminator` (as in MelGAN and EnCodec's decoder training).

One module computes both players' losses so that one backward pass and one optimizer step train both
(the training loop, DDP and the checkpoints stay as they are for every model):
- the critic's hinge loss reads the decoder's audio detached, so it trains the critic alone;
- the decoder's losses run the critic with its parameters frozen, so they train the decoder alone.
Only a decoders-only fine-tune uses it: the codes, and every prior trained on them, stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from engine.vqvae import losses
from engine.vqvae.discriminator import SpectrogramDiscriminator
from engine.vqvae.model import VQVAE, VQVAEOutput


@dataclass(frozen=True)
class AdversarialWeights:
    adversarial: float  # the decoder's hinge loss against the critic
    feature_matching: float  # L1 between the critic's activations on real and decoded audio


def critic_hinge_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Mean over resolutions of E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    terms = [
        torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
        for real, fake in zip(real_scores, fake_scores, strict=True)
    ]
    return sum(terms) / len(terms)


def generator_hinge_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Mean over resolutions of E[relu(1 - D(fake))]."""
    return sum(torch.relu(1 - fake).mean() for fake in fake_scores) / len(fake_scores)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean over every critic layer of |f(real) - f(fake)|, relative to the mean |f(real)| (so that each
    layer counts alike whatever its scale)."""
    terms = [
        (r.detach() - f).abs().mean() / r.detach().abs().mean().clamp(min=1e-8)
        for real_layers, fake_layers in zip(real, fake, strict=True)
        for r, f in zip(real_layers, fake_layers, strict=True)
    ]
    return sum(terms) / len(terms)


class AdversarialDecoderObjective(nn.Module):
    """Runs a decoders-only VQ-VAE step and adds the critic's terms for every decoded level."""

    def __init__(self, vqvae: VQVAE, critic: SpectrogramDiscriminator, weights: AdversarialWeights) -> None:
        super().__init__()
        self.vqvae = vqvae
        self.critic = critic
        self.weights = weights

    def forward(
        self, audio: torch.Tensor, bandwidth: losses.Bandwidth, levels: tuple[int, ...]
    ) -> VQVAEOutput:
        out = self.vqvae(audio, bandwidth, frozen_codes=True, levels=levels)
        target = losses.to_mono_2d(audio)
        real = self.critic(target)
        real_scores = [scores for scores, _ in real]
        real_features = [features for _, features in real]
        critic_total = decoder_total = target.new_zeros(())
        metrics = dict(out.metrics)
        # The critic as it is, its weights cut from the graph: the decoder's terms flow through it
        # into the decoder alone.
        frozen = {name: p.detach() for name, p in self.critic.named_parameters()}
        for level, x_hat in zip(out.levels, out.x_hat, strict=True):
            fake_scores = [scores for scores, _ in self.critic(x_hat.detach())]
            critic_loss = critic_hinge_loss(real_scores, fake_scores)
            fooled = torch.func.functional_call(self.critic, frozen, (x_hat,))
            adversarial = generator_hinge_loss([scores for scores, _ in fooled])
            matching = feature_matching_loss(real_features, [features for _, features in fooled])
            suffix = f"_l{level + 1}"
            metrics["critic_loss" + suffix] = critic_loss.detach()
            metrics["adversarial_loss" + suffix] = adversarial.detach()
            metrics["feature_matching_loss" + suffix] = matching.detach()
            critic_total = critic_total + critic_loss
            decoder_total = (
                decoder_total
                + self.weights.adversarial * adversarial
                + self.weights.feature_matching * matching
            )
        metrics["reconstruction_objective"] = out.loss.detach()
        return replace(out, loss=out.loss + decoder_total + critic_total, metrics=metrics)
