"""Per-level encoder and decoder stacks of the VQ-VAE (paper figure 1, appendix B.1).

Level L has its own encoder, which chains level blocks 0..L from raw audio, and its own decoder, which
mirrors them from level-L codes back to audio. Blocks are stride-2 kernel-4 convolutions followed by
dilated residual stacks; the decoder reverses the dilations and upsamples with transposed convolutions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.phase_split_conv import PhaseSplitConvTranspose1d, upsample_then_project
from engine.vqvae.resnet import DilatedResnet


class EncoderBlock(nn.Module):
    """Downsample by stride**down (each step: conv k=2*stride, then a resnet), then project to emb."""

    def __init__(self, in_channels: int, emb_width: int, down: int, stride: int, width: int, **resnet):
        super().__init__()
        steps: list[nn.Module] = []
        for i in range(down):
            steps.append(
                nn.Sequential(
                    nn.Conv1d(in_channels if i == 0 else width, width, 2 * stride, stride, stride // 2),
                    DilatedResnet(width, **resnet),
                )
            )
        steps.append(nn.Conv1d(width, emb_width, 3, 1, 1))
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, T) -> (N, E, T / stride**down)
        return self.model(x)


class DecoderBlock(nn.Module):
    """Project from emb, then upsample by stride**down (each step: resnet, then transposed conv)."""

    def __init__(self, emb_width: int, down: int, stride: int, width: int, **resnet):
        super().__init__()
        steps: list[nn.Module] = [nn.Conv1d(emb_width, width, 3, 1, 1)]
        for i in range(down):
            out_channels = emb_width if i == down - 1 else width
            steps.append(
                nn.Sequential(
                    DilatedResnet(width, **resnet),
                    PhaseSplitConvTranspose1d(width, out_channels, 2 * stride, stride, stride // 2),
                )
            )
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, E, T) -> (N, E, T * stride**down)
        return self.model(x)


class LevelEncoder(nn.Module):
    """Raw audio (N, 1, T) -> continuous latents (N, E, T / hop) of one level."""

    def __init__(self, level: int, downs_t, strides_t, emb_width: int, width: int, **resnet):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EncoderBlock(1 if l == 0 else emb_width, emb_width, downs_t[l], strides_t[l], width, **resnet)
            for l in range(level + 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.level_blocks:
            x = block(x)
        return x


class LevelDecoder(nn.Module):
    """Quantized latents (N, E, T / hop) of one level -> audio (N, 1, T). Block l, which undoes level l's
    downsampling, has widths[l] channels, and its residual stacks run their dilations repeats[l] times."""

    def __init__(self, level: int, downs_t, strides_t, emb_width: int, widths, repeats, **resnet):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            DecoderBlock(emb_width, downs_t[l], strides_t[l], widths[l], repeats=repeats[l], **resnet)
            for l in range(level + 1)
        )
        self.out = nn.Conv1d(emb_width, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *earlier, last = reversed(self.level_blocks)
        for block in earlier:
            x = block(x)
        *steps, final = last.model
        if not (isinstance(final, nn.Sequential) and len(final) == 2):  # a block that does not upsample
            return self.out(last(x))
        for step in steps:
            x = step(x)
        resnet, upsample = final
        # When decoding, the last upsampling and the output projection run as one convolution, so the
        # decoder's widest tensor (emb_width channels at the audio rate) is never made.
        return upsample_then_project(upsample, self.out, resnet(x))


def decoder_context_frames(decoder: LevelDecoder) -> int:
    """How many code frames on each side can influence one output sample of `decoder`.

    Decoding overlapping chunks with at least this margin, then cropping the margins, gives the same
    audio as one pass (zero padding at a chunk edge only reaches outputs within this distance).
    """
    radius = 0.0  # in code frames
    rate = 1  # samples of the current stage per code frame
    for level in reversed(range(len(decoder.level_blocks))):
        block = decoder.level_blocks[level]
        radius += 1 / rate  # the k=3 input projection
        for step in list(block.model)[1:]:
            resnet, upsample = step[0], step[1]
            radius += sum(resnet.dilations) / rate
            radius += 1 / rate  # a k=2s transposed conv reaches one input frame either side
            rate *= upsample.stride[0]
    radius += 1 / rate  # the output conv
    return math.ceil(radius) + 1


def encoder_context_samples(encoder: LevelEncoder, strides_t) -> int:
    """How many audio samples on each side can influence one latent frame of `encoder`."""
    radius = 0.0  # in samples
    rate = 1  # samples per frame of the current stage
    for level, block in enumerate(encoder.level_blocks):
        stride = strides_t[level]
        for step in list(block.model)[:-1]:
            conv, resnet = step[0], step[1]
            radius += (conv.kernel_size[0] // 2) * rate
            rate *= stride
            radius += sum(resnet.dilations) * rate
        radius += rate  # the k=3 output projection
    return math.ceil(radius) + 1
