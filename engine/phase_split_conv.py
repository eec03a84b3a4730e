"""A transposed convolution computed as an ordinary convolution into one channel group per output phase.

The VQ-VAE decoders and the upsamplers' conditioners upsample with stride-s transposed convolutions
(kernel 2s, padding s/2). On a CPU, PyTorch runs those on a slow path that also converts its output's
memory layout, and in the top-level decoder they took about half of the decode time, which is what a
preview waits for. Output sample `t * s + r` (phase r) reads only input frames `t + d` for a few offsets
d, each through one kernel tap, so the same sums come out of one ordinary convolution with s times the
output channels, interleaved afterwards. The parameters, their names and shapes stay those of
`nn.ConvTranspose1d`, so official checkpoints load as before and training sees the same parameters; the
results equal the transposed convolution's to float rounding (the sums are added in another order).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PhaseSplitConvTranspose1d(nn.ConvTranspose1d):
    """`nn.ConvTranspose1d`, computed by phase when its output is exactly `stride` times its input long
    (kernel - 2 * padding == stride; no groups, dilation or output padding); otherwise as PyTorch does."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not self._splits():
            return super().forward(x, output_size)
        (s,), (p,) = self.stride, self.padding
        # Tap k of the kernel carries input frame i to output sample i * s - p + k: phase r of output
        # frame t reads input frame t + d through tap k = r + p - d * s, where that tap exists.
        reads = [(r, k, (r + p - k) // s) for r in range(s) for k in range(self.kernel_size[0])
                 if (r + p - k) % s == 0]  # fmt: skip
        first = min(d for _, _, d in reads)
        span = max(d for _, _, d in reads) - first + 1
        taps = {(r, d - first): k for r, k, d in reads}
        zero = self.weight.new_zeros(self.out_channels, self.in_channels)

        def tap(r: int, j: int) -> torch.Tensor:  # (out, in): what phase r takes from offset first + j
            return self.weight[:, :, taps[r, j]].t() if (r, j) in taps else zero

        weight = torch.stack([torch.stack([tap(r, j) for j in range(span)], -1) for r in range(s)])
        bias = None if self.bias is None else self.bias.repeat(s)
        # Offsets run from first <= 0 to first + span - 1 >= 0 (the kernel covers frame t itself), so
        # zero padding of -first frames on the left and the last offset on the right keeps T frames.
        left, right = -first, first + span - 1
        if left == right:
            phases = F.conv1d(x, weight.reshape(-1, self.in_channels, span), bias, padding=left)
        else:
            phases = F.conv1d(F.pad(x, (left, right)), weight.reshape(-1, self.in_channels, span), bias)
        n, _, frames = phases.shape
        interleaved = phases.view(n, s, self.out_channels, frames).permute(0, 2, 3, 1)
        return interleaved.reshape(n, self.out_channels, frames * s)

    def _splits(self) -> bool:
        return (
            self.groups == 1
            and self.dilation == (1,)
            and self.output_padding == (0,)
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and self.kernel_size[0] - 2 * self.padding[0] == self.stride[0]
        )
