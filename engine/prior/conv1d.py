"""The small building blocks of a prior transformer layer, with the official parameter names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv1D(nn.Module):
    """y = x @ w + b with w stored (n_in, n_out): the transpose of nn.Linear, as in the checkpoints.

    The official 5B files store `w` in fp16; the loader up-casts it, and `w` follows x's dtype here.
    """

    def __init__(self, n_in: int, n_out: int, init_std: float = 0.02):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.w = nn.Parameter(torch.empty(n_in, n_out))
        self.b = nn.Parameter(torch.zeros(n_out))
        if self.w.device.type != "meta":
            nn.init.normal_(self.w, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.w, self.b
        if w.dtype != x.dtype:  # a cast only when one is needed: a cached sampling step is mostly calls
            w, b = w.to(x.dtype), b.to(x.dtype)
        out = torch.addmm(b, x.reshape(-1, x.shape[-1]), w)
        return out.view(*x.shape[:-1], self.n_out)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back (matters only for half-precision activations)."""

    def __init__(self, width: int):
        super().__init__(width, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and self.weight is not None and self.weight.dtype == torch.float32:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """The sigmoid approximation of GELU the checkpoints were trained with (not erf/tanh GELU)."""
    return x * torch.sigmoid(1.702 * x)


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = Conv1D(width, hidden)
        self.c_proj = Conv1D(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(quick_gelu(self.c_fc(x)))
