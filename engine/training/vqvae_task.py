"""Training the VQ-VAE on random mono crops (paper section 3 and appendix B.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from engine.data.dataset import CropDataset
from engine.training import reporting
from engine.training.config import TrainConfig
from engine.training.distributed_setup import Context
from engine.vqvae import VQVAE, VQVAEOutput, losses
from engine.vqvae.adversarial import AdversarialDecoderObjective, AdversarialWeights
from engine.vqvae.discriminator import DiscriminatorConfig, SpectrogramDiscriminator

# Fixed "steps" whose crops are drawn from the same seed as training but never trained on: the crops
# that set the loss normalisers and the first codebooks. Far beyond any real step count.
BANDWIDTH_STEP = 2**40
CODEBOOK_INIT_STEP = 2**40 + 1
BANDWIDTH_CROPS = 16


def estimate_bandwidth(dataset: CropDataset, seed: int) -> losses.Bandwidth:
    audio, _ = dataset.batch(BANDWIDTH_STEP, BANDWIDTH_CROPS, seed)
    return losses.estimate_bandwidth(audio)


@torch.no_grad()
def init_codebooks_(model: VQVAE, dataset: CropDataset, train: TrainConfig, device: torch.device) -> None:
    """Start every codebook from encoder vectors of one GLOBAL batch, the same on every rank.

    The model would otherwise initialise on its first training batch, which under DDP is the local
    slice of rank 0: the codebooks, and so the whole run, would depend on the number of processes.
    """
    audio, _ = dataset.batch(CODEBOOK_INIT_STEP, train.batch_size, train.seed)
    audio = audio.to(device).unsqueeze(1)
    for encoder, codebook in zip(model.encoders, model.bottleneck.level_blocks, strict=True):
        z_e = encoder(audio)  # (N, E, T)
        codebook.init_from_batch_(z_e.permute(0, 2, 1).reshape(-1, z_e.shape[1]).float())


@dataclass
class VQVAETask:
    model: VQVAE
    dataset: CropDataset
    train: TrainConfig
    context: Context
    bandwidth: losses.Bandwidth
    kind: str = "vqvae"
    levels: tuple[int, ...] = field(init=False)  # the levels whose reconstructions a step makes
    # With a critic (train.uses_critic): the module a step runs, the VQ-VAE and its critic together.
    objective: AdversarialDecoderObjective | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.train.decoders_only:
            # Before the optimizer is built: it takes only parameters that require gradients.
            self.model.encoders.requires_grad_(False)
            self.levels = self.model.levels_to_run(self.train.decoder_levels)
            for level, decoder in enumerate(self.model.decoders):
                decoder.requires_grad_(level in self.levels)
        else:
            self.levels = self.model.levels_to_run(self.train.retrain_levels)
            for level in range(self.model.config.levels):
                # Levels left out neither run nor train; their codebooks are buffers, never stepped.
                for part in (self.model.encoders[level], self.model.decoders[level]):
                    part.requires_grad_(level in self.levels)
        if self.train.uses_critic:
            # Built after the model from the global RNG that the run seeded, so a run is reproducible;
            # a resumed run then loads the critic's saved weights over these.
            critic = SpectrogramDiscriminator(DiscriminatorConfig(width=self.train.critic_width))
            weights = AdversarialWeights(self.train.adversarial, self.train.feature_matching)
            self.objective = AdversarialDecoderObjective(self.model, critic, weights).to(self.context.device)

    @property
    def module(self) -> nn.Module:
        return self.objective if self.objective is not None else self.model

    def companions(self) -> dict[str, nn.Module]:
        """Modules trained beside the model and saved with its checkpoints (not with the model)."""
        return {"critic": self.objective.critic} if self.objective is not None else {}

    def batch(self, step: int) -> torch.Tensor:
        audio, _ = self.dataset.batch(
            step, self.train.batch_size, self.train.seed, self.context.rank, self.context.world_size
        )
        return audio.to(self.context.device)

    def forward(self, module, audio: torch.Tensor) -> tuple[torch.Tensor, VQVAEOutput]:
        if self.objective is not None:
            out = module(audio, self.bandwidth, levels=self.levels)
            return out.loss, out
        out = module(audio, self.bandwidth, frozen_codes=self.train.decoders_only, levels=self.levels)
        return out.loss, out

    def metrics(self, audio: torch.Tensor, out: VQVAEOutput) -> dict[str, float]:
        metrics = {name: float(value) for name, value in out.metrics.items()}
        l_bins = self.model.config.l_bins
        for level, x_hat, codes in zip(out.levels, out.x_hat, out.codes, strict=True):
            suffix = f"_l{level + 1}"
            metrics["spectral_convergence_db" + suffix] = losses.spectral_convergence_db(
                audio.float(), x_hat.detach().float()
            )
            metrics["codebook_entropy_bits" + suffix] = losses.codebook_entropy_bits(codes, l_bins)
        return metrics

    def log_samples(self, writer, step: int, audio: torch.Tensor, out: VQVAEOutput) -> None:
        rate = self.model.config.sample_rate
        reporting.log_audio(writer, "audio/original", audio[0], step, rate)
        for level, x_hat in zip(out.levels, out.x_hat, strict=True):
            reporting.log_audio(writer, f"audio/reconstruction_l{level + 1}", x_hat[0], step, rate)

    def checkpoint_extra(self) -> dict:
        b = self.bandwidth
        return {"bandwidth": {"l1": b.l1, "l2": b.l2, "spec": b.spec}}
