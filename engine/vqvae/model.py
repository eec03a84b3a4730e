"""The hierarchical VQ-VAE: three independent autoencoders sharing one input (paper section 3).

`encode` turns audio into codes at every level; `decode` turns one level's codes back into audio with
that level's own decoder (the fast preview path uses the top level). Long inputs are processed in
overlapping chunks whose margins cover the receptive field, so memory stays bounded and the result
equals one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.errors import AudioInputError
from engine.vqvae import losses
from engine.vqvae.bottleneck import Bottleneck
from engine.vqvae.config import VQVAEConfig
from engine.vqvae.encdec import LevelDecoder, LevelEncoder, decoder_context_frames, encoder_context_samples

# Long audio is encoded/decoded in pieces of about this many samples (6 s at 44.1 kHz).
DEFAULT_CHUNK_SAMPLES = 1 << 18


@dataclass
class VQVAEOutput:
    loss: torch.Tensor  # () total training loss
    metrics: dict[str, torch.Tensor]  # scalar losses and codebook statistics, per level with _l{level+1}
    x_hat: list[torch.Tensor]  # per level of `levels`, (N, T) reconstructions
    codes: list[torch.Tensor]  # per level of `levels`, (N, T / hop) codes
    levels: tuple[int, ...]  # the levels that ran, bottom first (all of them unless asked otherwise)


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        dilations = {"m_conv": c.m_conv, "dilation_growth_rate": c.dilation_growth_rate,
                     "dilation_cycle": c.dilation_cycle}  # fmt: skip
        for level in range(c.levels):
            self.encoders.append(
                LevelEncoder(
                    level,
                    c.downs_t,
                    c.strides_t,
                    c.emb_width,
                    c.level_width(level),
                    depth=c.level_depth(level),
                    **dilations,
                )
            )
            self.decoders.append(
                LevelDecoder(
                    level,
                    c.downs_t,
                    c.strides_t,
                    c.emb_width,
                    widths=[c.decoder_block_width(level, block) for block in range(level + 1)],
                    repeats=c.decoder_block_repeats_of(level),
                    depth=c.decoder_depth(level),
                    reverse_dilation=c.reverse_decoder_dilation,
                    **dilations,
                )
            )
        self.bottleneck = Bottleneck(c.levels, c.l_bins, c.emb_width, c.mu, c.revival_threshold)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        return self.config.hop_lengths

    # --- inference -------------------------------------------------------------------------------

    def _as_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Accept (N, T) or the reference's (N, T, 1); return (N, 1, T) float32."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise AudioInputError("audio must be a floating-point tensor")
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.dim() != 2:
            raise AudioInputError(
                f"audio must have shape (N, T) at {self.sample_rate} Hz, got {tuple(x.shape)}"
            )
        if x.shape[1] == 0:
            raise AudioInputError("audio is empty")
        if not torch.isfinite(x).all():
            raise AudioInputError("audio contains NaN or infinite samples")
        return x.float().unsqueeze(1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, chunk_samples: int = DEFAULT_CHUNK_SAMPLES) -> list[torch.Tensor]:
        """Audio (N, T) -> codes per level, bottom first, each (N, ceil(T / hop)) int64.

        Audio whose length is not a multiple of the top hop is padded with silence at the end.
        """
        codes = self.encode_levels(x, range(self.config.levels), chunk_samples)
        return [codes[level] for level in range(self.config.levels)]

    @torch.no_grad()
    def encode_levels(
        self, x: torch.Tensor, levels, chunk_samples: int = DEFAULT_CHUNK_SAMPLES
    ) -> dict[int, torch.Tensor]:
        """Like `encode`, for the given levels only: each level has its own encoder from the audio, so a
        prior that needs one or two levels skips the cost of the others."""
        audio = self._as_batch(x)
        top_hop = self.hop_lengths[-1]
        length = audio.shape[-1]
        padded = -(-length // top_hop) * top_hop
        audio = nn.functional.pad(audio, (0, padded - length))
        codes = {}
        for level in levels:
            if not 0 <= level < self.config.levels:
                raise ValueError(f"level must be in 0..{self.config.levels - 1}, got {level}")
            z_e = self._encode_chunked(self.encoders[level], audio, chunk_samples)
            level_codes = self.bottleneck.level_blocks[level].encode(z_e)
            codes[level] = level_codes[:, : -(-length // self.hop_lengths[level])]
        return codes

    def _encode_chunked(self, encoder: LevelEncoder, audio: torch.Tensor, chunk_samples: int) -> torch.Tensor:
        top_hop = self.hop_lengths[-1]
        hop = self.hop_lengths[len(encoder.level_blocks) - 1]
        length = audio.shape[-1]
        chunk = max(top_hop, chunk_samples // top_hop * top_hop)
        if length <= chunk:
            return encoder(audio)
        # Chunk edges sit on the top hop so that every level's stride grid stays aligned.
        margin = -(-encoder_context_samples(encoder, self.config.strides_t) // top_hop) * top_hop
        pieces = []
        for start in range(0, length, chunk):
            end = min(start + chunk, length)
            lo, hi = max(0, start - margin), min(length, end + margin)
            z = encoder(audio[..., lo:hi])
            pieces.append(z[..., (start - lo) // hop : (end - lo) // hop])
        return torch.cat(pieces, dim=-1)

    @torch.no_grad()
    def decode(
        self, codes: torch.Tensor, level: int, chunk_samples: int = DEFAULT_CHUNK_SAMPLES
    ) -> torch.Tensor:
        """Codes (N, T_level) of one level -> audio (N, T_level * hop) from that level's decoder alone."""
        if not 0 <= level < self.config.levels:
            raise ValueError(f"level must be in 0..{self.config.levels - 1}, got {level}")
        codes = torch.as_tensor(codes)
        if codes.dim() != 2 or codes.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"codes must be an (N, T) integer tensor, got {tuple(codes.shape)} {codes.dtype}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.l_bins):
            raise ValueError(f"codes must lie in 0..{self.config.l_bins - 1}")
        codes = codes.long().to(self.bottleneck.level_blocks[level].k.device)
        decoder = self.decoders[level]
        codebook = self.bottleneck.level_blocks[level]
        hop = self.hop_lengths[level]
        frames = codes.shape[1]
        chunk = max(1, chunk_samples // hop)
        if frames <= chunk:
            return decoder(codebook.decode(codes))[:, 0]
        margin = decoder_context_frames(decoder)
        pieces = []
        for start in range(0, frames, chunk):
            end = min(start + chunk, frames)
            lo, hi = max(0, start - margin), min(frames, end + margin)
            audio = decoder(codebook.decode(codes[:, lo:hi]))[:, 0]
            pieces.append(audio[:, (start - lo) * hop : (end - lo) * hop])
        return torch.cat(pieces, dim=-1)

    # --- training --------------------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        bandwidth: losses.Bandwidth,
        frozen_codes: bool = False,
        levels: tuple[int, ...] | None = None,
    ) -> VQVAEOutput:
        """Encode, quantize and decode every level (or `levels`); return the training loss and metrics.

        In training mode the codebooks take an EMA step; in eval mode they are left untouched. With
        `frozen_codes` the encoders run without gradients and the codebooks never move, so only the
        decoders learn (and the commitment loss, which trains the encoders alone, is a constant).
        `levels` runs only those levels: a fine-tune of some levels (or, with `frozen_codes`, of their
        decoders) then does not pay for the others (the bottom decoder, running at the audio rate, is
        most of a step's cost), whose codes and audio stay exactly as they were.
        """
        c = self.config
        levels = self.levels_to_run(levels)
        audio = self._as_batch(x)
        target = audio[:, 0]
        metrics: dict[str, torch.Tensor] = {}
        x_hat: dict[int, torch.Tensor] = {}
        codes: dict[int, torch.Tensor] = {}
        commit_total = target.new_zeros(())
        update = self.training and not frozen_codes
        for level in levels:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen_codes):
                z_e = self.encoders[level](audio)
                q = self.bottleneck.level_blocks[level](z_e, update=update)
            z_q = q.z_q if self.training else q.z_q.detach()
            x_hat[level] = self.decoders[level](z_q)[:, 0]
            codes[level] = q.codes
            commit_total = commit_total + q.commit_loss
            suffix = f"_l{level + 1}"
            metrics["commit_loss" + suffix] = q.commit_loss.detach()
            for name, value in q.metrics.items():
                metrics[name + suffix] = value.detach()

        recons_total = spec_total = multispec_total = log_mel_total = dynamics_total = target.new_zeros(())
        # computed only when weighed (the reference's objective costs what it did), and once per audio
        weighs_mels = bool(c.log_mel or c.log_mel_dynamics)
        target_mel = losses.log_mel(target, c.sample_rate) if weighs_mels else None
        for level in reversed(levels):
            recons = losses.lmix_loss(
                target, x_hat[level], bandwidth, c.lmix_l1, c.lmix_l2, c.lmix_linf, c.linf_k
            )
            spec = (losses.spectral_loss(target, x_hat[level]) / bandwidth.spec).mean()
            multispec = (
                losses.multispectral_loss(
                    target, x_hat[level], c.multispec_n_fft, c.multispec_hop_length, c.multispec_window_size
                )
                / bandwidth.spec
            ).mean()
            suffix = f"_l{level + 1}"
            metrics["recons_loss" + suffix] = recons.detach()
            metrics["spectral_loss" + suffix] = spec.detach()
            metrics["multispectral_loss" + suffix] = multispec.detach()
            recons_total = recons_total + recons
            spec_total = spec_total + spec
            multispec_total = multispec_total + multispec
            mel_hat = losses.log_mel(x_hat[level], c.sample_rate) if weighs_mels else None
            if c.log_mel:
                log_mel = losses.log_mel_distance(target_mel, mel_hat).mean()
                metrics["log_mel_loss" + suffix] = log_mel.detach()
                log_mel_total = log_mel_total + log_mel
            if c.log_mel_dynamics:
                dynamics = losses.log_mel_movement_distance(target_mel, mel_hat).mean()
                metrics["log_mel_dynamics_loss" + suffix] = dynamics.detach()
                dynamics_total = dynamics_total + dynamics

        loss = (
            recons_total
            + c.spectral * spec_total
            + c.multispectral * multispec_total
            + c.commit * commit_total
            + c.log_mel * log_mel_total
            + c.log_mel_dynamics * dynamics_total
        )
        with torch.no_grad():
            bottom = x_hat[levels[0]]  # the lowest level that ran
            metrics.update(
                recons_loss=recons_total.detach(),
                spectral_loss=spec_total.detach(),
                multispectral_loss=multispec_total.detach(),
                commit_loss=commit_total.detach(),
                spectral_convergence=losses.spectral_convergence(target, bottom).mean(),
                l2_loss=losses.lmix_loss(target, bottom, bandwidth, l1=0.0, l2=1.0, linf=0.0),
                l1_loss=losses.lmix_loss(target, bottom, bandwidth, l1=1.0, l2=0.0, linf=0.0),
                linf_loss=losses.lmix_loss(
                    target, bottom, bandwidth, l1=0.0, l2=0.0, linf=1.0, linf_k=c.linf_k
                ),
            )
        return VQVAEOutput(loss, metrics, [x_hat[l] for l in levels], [codes[l] for l in levels], levels)

    def levels_to_run(self, levels: tuple[int, ...] | None) -> tuple[int, ...]:
        """The levels `forward(..., levels=levels)` runs, bottom first; a clear error for a bad choice.
        (A new model trains every level: `engine.training` allows some levels alone only in fine-tunes.)"""
        every = tuple(range(self.config.levels))
        if levels is None or tuple(sorted(set(levels))) == every:
            return every
        wrong = [l for l in levels if l not in every]
        if wrong or not levels:
            raise ValueError(f"levels must be some of {list(every)}, got {list(levels)}")
        return tuple(sorted(set(levels)))
