"""Turning one step's logits into tokens: top-k / top-p filtering and seeded draws.

Two draw orders are offered on purpose:
- `sample_tokens_per_branch` gives every branch (batch row) its own `torch.Generator`, so a branch's draws
  depend only on its seed and its logits, never on which other branches share the batch. The app uses this.
- `reference_order_sample` reproduces the reference exactly: one draw for the whole batch per step on the
  global RNG, so only `torch.manual_seed(s)` + the same call order reproduces the reference's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Copy of `logits` with entries outside the top-k / nucleus (top-p) set replaced by -inf (last dim).

    top_k: keep logits >= the k-th largest (ties with the k-th are all kept). top_p: sort descending and
    drop entries whose cumulative softmax mass *before* them already exceeds p, so the most likely entry
    always stays and the kept prefix is the shortest one whose mass exceeds p. As in the reference, top_k and
    top_p cannot both be set; 0 disables each.
    """
    if top_k < 0 or not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_k must be >= 0 and top_p in [0, 1], got top_k={top_k}, top_p={top_p}")
    if top_k > 0 and top_p > 0.0:
        raise ValueError("use either top_k or top_p, not both (the reference rejects the combination)")
    out = logits.clone()
    top_k = min(top_k, out.size(-1))
    if top_k > 0:
        kth_largest = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out[out < kth_largest] = -float("inf")
    if top_p > 0.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        mass_through = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        # Shift right by one: an entry goes only if the mass of the entries strictly before it exceeds p.
        drop_sorted = torch.zeros_like(mass_through, dtype=torch.bool)
        drop_sorted[..., 1:] = mass_through[..., :-1] > top_p
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
        out[drop] = -float("inf")
    return out


def _probabilities(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    if temperature <= 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    # Same order as the reference: temperature first, then the filters, then softmax.
    scaled = filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p)
    return F.softmax(scaled, dim=-1)


def sample_next_token(
    logits: torch.Tensor,
    generator: torch.Generator | None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
) -> torch.Tensor:
    """One token per row of `(N, bins)` logits, all rows drawn in one call from `generator`; `(N,)` int64."""
    probs = _probabilities(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, replacement=True, generator=generator).squeeze(-1)


def sample_tokens_per_branch(
    logits: torch.Tensor,
    generators: Sequence[torch.Generator],
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
) -> torch.Tensor:
    """One token per branch: row i of `(N, bins)` logits is drawn from `generators[i]` alone; returns `(N,)`.

    A branch sampled with the same seed and the same logits therefore draws the same tokens in a batch of
    one or in a batch of many, which lets the app regrow or extend any single branch from its seed.
    """
    if logits.dim() != 2 or logits.size(0) != len(generators):
        raise ValueError(
            f"need (N, bins) logits and N generators, got {tuple(logits.shape)} and {len(generators)}"
        )
    probs = _probabilities(logits, temperature, top_k, top_p)
    # Inverse-CDF draws: one uniform number per branch from its own generator, then one batched search.
    # torch.multinomial per row costs about 2 ms per call on a CPU, more than a small prior's whole step.
    # u is scaled by each row's total so float rounding in the cumulative sum can never run off the end,
    # and side="right" lands on the first bin whose mass lies above u, which is never a zero-mass bin.
    cdf = probs.double().cumsum(dim=-1)
    uniforms = torch.cat([torch.rand(1, dtype=torch.float64, generator=gen) for gen in generators])
    u = (uniforms * cdf[:, -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.size(-1) - 1)


def reference_order_sample(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 0.0
) -> torch.Tensor:
    """The reference's step: filter `logits / temperature`, one categorical draw for the batch, global RNG.

    Uses `torch.distributions.Categorical` like the reference does, so that its own normalisation of the
    logits (and thus the multinomial input) is bit-identical; `(N, bins)` -> `(N,)`.
    """
    if temperature <= 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
    return torch.distributions.Categorical(logits=scaled).sample()
