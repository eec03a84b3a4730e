"""A multi-resolution spectrogram discriminator for fine-tuning decoders adversarially.

A decoder trained on L2 and spectral-magnitude losses alone predicts the mean of what its codes could
mean, and the top level's codes leave a lot open: its audio comes out dull, with quiet highs that barely
move. A critic that sees log-magnitude spectrograms at several resolutions tells such audio from the
real thing by exactly that texture, and a decoder trained against it (beside its usual losses) puts
plausible detail back. The critic only exists in training: it is saved with a run's checkpoints, never
with the model.

Each resolution's critic is a small 2-D convolution stack over (frames, frequency bins), striding along
frequency, with dilations along time; it returns a map of real/fake scores and its hidden activations
(for the feature-matching loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# Added to magnitudes before the log, so that digital silence stays finite (about -100 dB).
LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class DiscriminatorConfig:
    width: int = 16  # channels of every hidden layer
    # (n_fft, hop) per resolution; Hann windows of n_fft samples
    resolutions: tuple[tuple[int, int], ...] = ((1024, 256), (512, 128), (256, 64))
    dilations: tuple[int, ...] = (1, 2, 4)  # along time, one strided layer each

    def __post_init__(self) -> None:
        if self.width <= 0 or not self.resolutions or not self.dilations:
            raise ValueError("a discriminator needs a positive width, resolutions and dilations")
        for n_fft, hop in self.resolutions:
            if n_fft <= 0 or hop <= 0:
                raise ValueError(f"STFT sizes must be positive, got n_fft={n_fft}, hop={hop}")


def _conv(c_in: int, c_out: int, kernel, stride=(1, 1), dilation=(1, 1)) -> nn.Module:
    padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
    return weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation))


class SpectrogramCritic(nn.Module):
    """Scores the log-magnitude spectrogram of (N, T) audio at one STFT resolution."""

    def __init__(self, n_fft: int, hop: int, width: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [_conv(1, width, (3, 9))]
        for d in dilations:
            layers.append(_conv(width, width, (3, 9), stride=(1, 2), dilation=(d, 1)))
        layers.append(_conv(width, width, (3, 3)))
        self.layers = nn.ModuleList(layers)
        self.score = _conv(width, 1, (3, 3))
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(audio.float(), self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        x = (spec + LOG_FLOOR).log().transpose(1, 2).unsqueeze(1)  # (N, 1, frames, bins)
        features = []
        for layer in self.layers:
            x = self.activation(layer(x))
            features.append(x)
        return self.score(x), features


class SpectrogramDiscriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        self.critics = nn.ModuleList(
            SpectrogramCritic(n_fft, hop, config.width, config.dilations) for n_fft, hop in config.resolutions
        )

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """(N, T) audio -> per resolution, (score map, hidden activations)."""
        return [critic(audio) for critic in self.critics]
