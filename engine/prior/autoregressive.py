"""The autoregressive core of a prior (checkpoint prefix `prior.`) and of the 5b_lyrics lyric
encoder (prefix `prime_prior.`): token embedding, learned positions, the transformer, the output."""

from __future__ import annotations

import torch
from torch import nn

from engine.prior.config import TransformerConfig
from engine.prior.transformer import Transformer


class PositionEmbedding(nn.Module):
    """Learned (n_ctx, W) table stored as `pos_emb.pos_emb`."""

    def __init__(self, n_ctx: int, width: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.empty(n_ctx, width))
        if self.pos_emb.device.type != "meta":
            nn.init.normal_(self.pos_emb, std=0.01)


class AutoregressiveCore(nn.Module):
    """Predicts stream position t from positions < t.

    The transformer input at position t is x_emb(id at t - 1) + pos_emb[t] + x_cond[t]; position 0
    has no previous id and takes a start vector instead (the label start embedding, or the learned
    `start_token` when there are no labels).
    """

    def __init__(
        self, cfg: TransformerConfig, bins: int, start_token: bool, with_output: bool, tied_output: bool
    ):
        super().__init__()
        self.config = cfg
        self.bins = bins
        self.x_emb = nn.Embedding(bins, cfg.width)
        if start_token:
            self.start_token = nn.Parameter(torch.empty(1, cfg.width))
            if self.start_token.device.type != "meta":
                nn.init.normal_(self.start_token, std=0.01)
        self.pos_emb = PositionEmbedding(cfg.n_ctx, cfg.width)
        self.transformer = Transformer(cfg)
        if with_output:
            self.x_out = nn.Linear(cfg.width, bins, bias=False)
            if tied_output:
                # The upsamplers and 1b_lyrics share one table for input and output (both keys are
                # in the checkpoint).
                self.x_out.weight = self.x_emb.weight

    def start_vector(self, batch: int, start: torch.Tensor | None) -> torch.Tensor:
        """(N, 1, W) input of position 0."""
        if start is not None:
            return start
        return self.start_token.view(1, 1, -1).expand(batch, 1, -1)

    def inputs(
        self,
        ids: torch.Tensor,
        t0: int,
        x_cond: torch.Tensor | None,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Transformer inputs for positions [t0, t0 + k).

        ids: (N, m) previous-position ids (the id at t - 1 feeds position t). At t0 == 0 the start
        vector fills position 0, so k = m + 1; otherwise k = m. x_cond: (N, n_ctx, W) or None.
        """
        parts = []
        if t0 == 0:
            parts.append(self.start_vector(ids.shape[0], start).to(self.x_emb.weight.dtype))
        if ids.shape[1]:
            if bool((ids < 0).any() or (ids >= self.bins).any()):
                raise ValueError(f"token ids must lie in 0..{self.bins - 1}")
            parts.append(self.x_emb(ids))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        t1 = t0 + x.shape[1]
        if t1 > self.config.n_ctx:
            raise ValueError(
                f"the window holds {self.config.n_ctx} positions; cannot run positions {t0}..{t1 - 1}"
            )
        x = x + self.pos_emb.pos_emb[t0:t1]
        if x_cond is not None:
            x = x + x_cond[:, t0:t1]
        return x

    def outputs(self, h: torch.Tensor, t0: int, x_cond: torch.Tensor | None, add_cond: bool) -> torch.Tensor:
        """Transformer outputs (N, k, W) at positions [t0, t0 + k) -> logits (N, k, bins)."""
        if add_cond and x_cond is not None:
            h = h + x_cond[:, t0 : t0 + h.shape[1]]
        return self.x_out(h)
