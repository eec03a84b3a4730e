"""A transposed convolution computed as an ordinary convolution into one channel group per output phase.

The VQ-VAE decoders and the upsamplers' conditioners upsample with stride-s transposed convolutions
(kernel 2s, padding s/2). On a CPU, PyTorch runs those on a slower path that also converts its output's
memory layout: the default decoder's widest one (32 to 64 channels, 4 x 10 s of previews) took 0.53 s
where the same sums as an ordinary convolution take 0.37 s (one thread; not measured on a GPU). Output
sample `t * s + r` (phase r) reads only input frames `t + d` for a few offsets d, each through one
kernel tap, so the same sums come out of one ordinary convolution with s times the output channels,
interleaved afterwards. The parameters, their names and shapes stay those of `nn.ConvTranspose1d`, so
official checkpoints load as before and training sees the same parameters; the results equal the
transposed convolution's to float rounding (the sums are added in another order).
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
        weight, first = self.phase_weights()
        return _interleaved(x, weight, self.bias, first)

    def phase_weights(self) -> tuple[torch.Tensor, int]:
        """(stride, out, in, span) weights and the first offset: phase r of output frame t is
        sum_j weight[r, :, :, j] @ x[t + first + j], plus the bias (x zero outside its frames)."""
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

        return torch.stack([torch.stack([tap(r, j) for j in range(span)], -1) for r in range(s)]), first

    def _splits(self) -> bool:
        return (
            self.groups == 1
            and self.dilation == (1,)
            and self.output_padding == (0,)
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and self.kernel_size[0] - 2 * self.padding[0] == self.stride[0]
        )


def _interleaved(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, first: int
) -> torch.Tensor:
    """(N, in, T) -> (N, out, T * stride) from phase weights (stride, out, in, span) starting at offset
    `first`, with x read as zero outside its frames."""
    s, c_out, c_in, span = weight.shape
    # Offsets run from first <= 0 to first + span - 1 >= 0 (the kernel covers frame t itself), so
    # zero padding of -first frames on the left and the last offset on the right keeps T frames.
    left, right = -first, first + span - 1
    flat, phase_bias = weight.reshape(s * c_out, c_in, span), None if bias is None else bias.repeat(s)
    if left == right:
        phases = F.conv1d(x, flat, phase_bias, padding=left)
    else:
        phases = F.conv1d(F.pad(x, (left, right)), flat, phase_bias)
    n, _, frames = phases.shape
    return phases.view(n, s, c_out, frames).permute(0, 2, 3, 1).reshape(n, c_out, frames * s)


def upsample_then_project(up: nn.ConvTranspose1d, out: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """`out(up(x))`, where `out` keeps the length (odd kernel, padding half of it, stride 1).

    Both are linear with nothing between them, so when `up` splits by phase the two compose into one
    convolution straight to `out`'s few channels, and the wide tensor between them (the VQ-VAE decoder's
    last upsampling: emb_width channels at the audio rate) is never made. `out` reads zeros beyond the
    ends of `up`'s output where the composed sum reads what `up` would have made there, so those terms
    are taken back out at the first and last few samples. Inference only: training keeps the two steps.
    """
    if torch.is_grad_enabled() or not _composes(up, out):
        return out(up(x))
    up_weight, first = up.phase_weights()  # (s, mid, in, span)
    s, _, c_in, span = up_weight.shape
    (q,) = out.padding
    # Output sample t*s + r + j (j = -q..q, out's taps) is phase (r + j) % s of frame t + (r + j) // s.
    reach = [(r, j, (r + j) // s) for r in range(s) for j in range(-q, q + 1)]
    lo = min(shift for *_, shift in reach) + first
    hi = max(shift for *_, shift in reach) + first + span - 1
    composed = up_weight.new_zeros(s, out.out_channels, c_in, hi - lo + 1)
    for r, j, shift in reach:
        start = shift + first - lo
        composed[r, :, :, start : start + span] += torch.einsum("om,mcd->ocd", out.weight[:, :, j + q],
                                                                up_weight[(r + j) % s])  # fmt: skip
    bias = out.bias
    if up.bias is not None:
        through = out.weight.sum(-1) @ up.bias
        bias = through if bias is None else bias + through
    y = _interleaved(x, composed, bias, lo)
    length = y.shape[-1]
    edges = sorted(set(range(min(q, length))) | set(range(max(length - q, 0), length)))
    for o, j in ((o, j) for o in edges for j in range(-q, q + 1) if not 0 <= o + j < length):
        beyond = _made_beyond_the_ends(up, up_weight, first, x, o + j)
        y[:, :, o] -= beyond @ out.weight[:, :, j + q].t()
    return y


def _made_beyond_the_ends(
    up: nn.ConvTranspose1d, up_weight: torch.Tensor, first: int, x: torch.Tensor, u: int
) -> torch.Tensor:
    """(N, mid): the sample `u` (outside 0..T*s-1) that `up`'s phase sums give, x zero outside its frames."""
    s, _, _, span = up_weight.shape
    t, r = u // s, u % s
    made = x.new_zeros(x.shape[0], up.out_channels) + (0 if up.bias is None else up.bias)
    for d in range(span):
        if 0 <= t + first + d < x.shape[-1]:
            made += x[:, :, t + first + d] @ up_weight[r, :, :, d].t()
    return made


def _composes(up: nn.ConvTranspose1d, out: nn.Conv1d) -> bool:
    same_length = out.kernel_size[0] == 2 * out.padding[0] + 1 if isinstance(out.padding, tuple) else False
    plain = out.stride == (1,) and out.dilation == (1,) and out.groups == 1 and out.padding_mode == "zeros"
    return isinstance(up, PhaseSplitConvTranspose1d) and up._splits() and same_length and plain
