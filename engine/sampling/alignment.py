"""Lyric alignment of sampled top-level codes (the reference's `get_alignment`).

The attention of the prior's alignment layer/head, from music positions to the lyric tokens of each
window, is taken per hop window and scattered into one (music codes x full lyric tokens) matrix per
item. Where windows overlap, the earliest window wins: the reference writes the hops in reverse order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.prior.labels import Label
from engine.prior.windows import get_starts, hop_length
from engine.sampling.drivers import window_labels


def get_alignment(
    prior,
    codes: torch.Tensor,
    labels: Sequence[Label],
    hop_fraction: float,
    items: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Per item, a float32 (T, len(full lyric tokens)) matrix of alignment weights for (N, T) codes.

    hop_fraction: the top level's (the reference uses hps.hop_fraction[top]). labels: one Label per
    item (base labels, offset as for the song start). items: which rows to compute (default all).
    A song shorter than one context is padded with code 0 for the forward passes, as the reference
    does, and the padding rows are dropped.
    """
    cfg = prior.config
    if cfg.alignment_layer is None or not cfg.n_tokens:
        raise ValueError("this prior has no lyric alignment layer")
    n, total = codes.shape
    items = list(range(n)) if items is None else list(items)
    length = max(total, cfg.n_ctx)
    padded = torch.zeros(n, length, dtype=torch.long, device=codes.device)
    padded[:, :total] = codes
    starts = get_starts(length, cfg.n_ctx, hop_length(hop_fraction, cfg.n_ctx))
    hops = {}
    for start in starts:
        y, indices = window_labels(prior, labels, start, n)
        for i in items:
            # Batch 1 per item, as the reference (its lyric prior's loss path only works at batch 1).
            with torch.no_grad():
                w = prior.alignment_weights(padded[i : i + 1, start : start + cfg.n_ctx], y[i : i + 1])
            hops[start, i] = (w[0].float().cpu().numpy(), indices[i])
    out = []
    for i in items:
        full = labels[i if len(labels) > 1 else 0].full_tokens
        # One extra column receives the padding index -1 and is dropped at the end.
        matrix = np.zeros((length, len(full) + 1), dtype=np.float32)
        for start in reversed(starts):  # earlier hops overwrite later ones
            weights, idx = hops[start, i]
            matrix[start : start + cfg.n_ctx, idx] = weights
        out.append(matrix[:total, :-1])
    return out
