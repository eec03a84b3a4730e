"""Dilated residual stacks used throughout the VQ-VAE (and by the upsampler conditioner).

Module names mirror the official checkpoints (`model.{r}.model.{1,3}`) so state_dicts load strictly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualConvBlock(nn.Module):
    """x + res_scale * conv1x1(relu(conv3_dilated(relu(x)))): ReLU before each conv, no norm."""

    def __init__(self, channels: int, hidden: int, dilation: int, res_scale: float = 1.0):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(channels, hidden, 3, 1, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.Conv1d(hidden, channels, 1, 1, 0),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T) -> (N, C, T)
        return x + self.res_scale * self.model(x)


def block_dilations(depth: int, growth: int, cycle: int | None, reverse: bool) -> list[int]:
    """Dilation of each residual block in order of application."""
    dilations = [growth ** (r if cycle is None else r % cycle) for r in range(depth)]
    return dilations[::-1] if reverse else dilations


class DilatedResnet(nn.Module):
    def __init__(
        self,
        channels: int,
        depth: int,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        scale_residual: bool = False,
        reverse_dilation: bool = False,
        repeats: int = 1,
    ):
        """`repeats` runs the stack's dilation schedule that many times in a row (depth * repeats
        residual blocks in all)."""
        super().__init__()
        res_scale = 1.0 / math.sqrt(depth * repeats) if scale_residual else 1.0
        hidden = int(m_conv * channels)
        schedule = block_dilations(depth, dilation_growth_rate, dilation_cycle, reverse_dilation)
        self.dilations = schedule * repeats
        self.model = nn.Sequential(
            *[ResidualConvBlock(channels, hidden, d, res_scale) for d in self.dilations]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
