"""The prior transformer stack: pre-LN layers with a parallel residual, h = x + a + MLP(LN1(x + a))."""

from __future__ import annotations

import torch
from torch import nn

from engine.prior.attention import FactoredAttention
from engine.prior.config import TransformerConfig
from engine.prior.conv1d import MLP, LayerNorm
from engine.prior.kv_cache import KVCache


class ResAttnBlock(nn.Module):
    def __init__(
        self,
        width: int,
        n_state: int,
        mlp_width: int,
        heads: int,
        kind: int,
        block_ctx: int,
        prime_keep: int,
        res_scale: float,
    ):
        super().__init__()
        self.attn = FactoredAttention(width, n_state, heads, kind, block_ctx, prime_keep)
        self.ln_0 = LayerNorm(width)
        self.mlp = MLP(width, mlp_width)
        self.ln_1 = LayerNorm(width)
        self.res_scale = res_scale

    @property
    def kind(self) -> int:
        return self.attn.kind

    def forward(self, x, t0=0, cache=None, encoder_kv=None, keep_weights=False):
        a, weights = self.attn(self.ln_0(x), t0, cache, encoder_kv, keep_weights)
        m = self.mlp(self.ln_1(x + a))
        if self.res_scale == 1.0:
            return x + a + m, weights
        return x + self.res_scale * (a + m), weights


class Transformer(nn.Module):
    """`_attn_mods.d` are the layers, named as in the official checkpoints."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        self._attn_mods = nn.ModuleList(
            ResAttnBlock(
                cfg.width,
                cfg.n_state,
                cfg.mlp_width,
                cfg.heads,
                kind,
                cfg.block_ctx,
                cfg.prime_keep,
                cfg.res_scale,
            )
            for kind in cfg.attn_funcs
        )

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the layers compute in: that of their weights (float32, or bf16/fp16 on a GPU).

        Embeddings, conditioning and the output projection stay float32; as in the reference's fp16
        sampling, only the stack runs in low precision (layer norms and softmax still in float32).
        """
        return self._attn_mods[0].attn.c_attn.w.dtype

    def forward(
        self,
        x: torch.Tensor,
        t0: int = 0,
        cache: KVCache | None = None,
        encoder_kv: torch.Tensor | None = None,
        record_layer: int | None = None,
        hidden_states: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N, k, W) inputs at positions [t0, t0 + k) -> (N, k, W) in fp32, and the softmax
        weights of `record_layer` (N, H, k, keys) if asked. `hidden_states` collects every
        layer's output (for debugging against the reference's per-block activations)."""
        recorded = None
        x = x.to(self.compute_dtype)
        for d, layer in enumerate(self._attn_mods):
            keep = d == record_layer
            x, weights = layer(x, t0, None if cache is None else cache[d], encoder_kv, keep)
            if keep:
                recorded = weights
            if hidden_states is not None:
                hidden_states.append(x)
        return x.float(), recorded
