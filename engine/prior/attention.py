"""Factorised self-attention of the Jukebox priors, as plain reshapes over dense attention.

One code path serves the full-window forward and cached prefill: a chunk of queries for stream
positions [t0, t0 + k) attends to keys that start at a block boundary, the query chunk is padded
to whole blocks (front by t0 % block_ctx, back to the block end), the kind's reshape is applied,
and the padding rows are cut off again. The full forward is the chunk t0 = 0, k = n_ctx.
Single-token steps take a short path that slices exactly the keys the kind allows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.prior.config import BLOCK, COLUMN, DENSE, ENC_DEC, PREV_BLOCK, PRIME, attention_scale
from engine.prior.conv1d import Conv1D
from engine.prior.kv_cache import LayerCache

# Masked scores get this finite value (as in the reference); no row is ever fully masked here (the
# all-zero block of PREV_BLOCK is unmasked), so it behaves exactly like -inf and a fused kernel with
# a boolean mask gives the same result.
MASKED = -1e9

# Score matrices with at least this many entries per head use torch's fused attention (also always
# on GPUs): same maths within ~1e-6, far less memory for long dense layers. Smaller ones use the
# reference's op order (matmul, scale, fp32 softmax), which reproduces the fixture bit for bit, except
# a sampling step's single query: there one fused call replaces six small ones, 12% of a cached step
# of the default prior on a CPU thread, and the codes drawn stay the reference's (tests/test_prior_*).
FUSED_MIN_SCORES = 1 << 16


def causal_mask(q_len: int, k_len: int, diagonal: int, device: torch.device) -> torch.Tensor | None:
    """(q_len, k_len) bool, True where query i may see key j <= i + diagonal; None if all allowed."""
    if diagonal >= k_len - 1:
        return None
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal)


def dense_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    mask: torch.Tensor | None = None,
    keep_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention: q (B, Lq, S), k/v (B, Lk, S) -> (B, Lq, S), plus (B, H, Lq, Lk) weights.

    Head h owns columns [h*dh, (h+1)*dh). Scores are scaled after the matmul and the softmax runs
    in fp32 and is cast back, as in the reference.
    """
    b, lq, s = q.shape
    dh = s // heads
    qh = q.view(b, lq, heads, dh).transpose(1, 2)
    kh = k.view(b, k.shape[1], heads, dh).transpose(1, 2)
    vh = v.view(b, v.shape[1], heads, dh).transpose(1, 2)
    if not keep_weights and (q.is_cuda or lq == 1 or lq * k.shape[1] >= FUSED_MIN_SCORES):
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=attention_scale(dh))
        return out.transpose(1, 2).reshape(b, lq, s), None
    scores = torch.matmul(qh, kh.transpose(-1, -2))
    scores = scores * attention_scale(dh)
    dtype = scores.dtype
    scores = scores.float()
    if mask is not None:
        scores = scores.masked_fill(~mask, MASKED)
    weights = torch.softmax(scores, dim=-1).to(dtype)
    out = torch.matmul(weights, vh)
    out = out.transpose(1, 2).reshape(b, lq, s)
    return out, (weights if keep_weights else None)


def blocked_attention(
    kind: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t0: int, block_ctx: int, heads: int
) -> torch.Tensor:
    """BLOCK / COLUMN / PREV_BLOCK attention for queries at positions [t0, t0 + Lq).

    q: (N, Lq, S). k/v: (N, Lk, S) for positions [start, t0 + Lq), where start is a block boundary:
    the query's own block (BLOCK), 0 (COLUMN), or the block before the query's first block, 0 at
    most (PREV_BLOCK). Returns (N, Lq, S).
    """
    bc = block_ctx
    n, lq, s = q.shape
    front = t0 % bc
    back = -(front + lq) % bc
    q = F.pad(q, (0, 0, front, back))
    k = F.pad(k, (0, 0, 0, back))
    v = F.pad(v, (0, 0, 0, back))
    qb, kb = q.shape[1] // bc, k.shape[1] // bc
    if kind == BLOCK:
        # Keys end where the queries end, and BLOCK keys start at the query's block.
        k, v = k[:, -qb * bc :], v[:, -qb * bc :]
        out, _ = dense_attention(
            q.reshape(n * qb, bc, s),
            k.reshape(n * qb, bc, s),
            v.reshape(n * qb, bc, s),
            heads,
            causal_mask(bc, bc, 0, q.device),
        )
        out = out.view(n, qb * bc, s)
    elif kind == COLUMN:
        # (N, blocks, bc, S) -> (N * bc, blocks, S): each column is its own causal sequence,
        # with query blocks aligned to the last key blocks.
        def columns(x: torch.Tensor, nb: int) -> torch.Tensor:
            return x.view(n, nb, bc, s).transpose(1, 2).contiguous().view(n * bc, nb, s)

        out, _ = dense_attention(
            columns(q, qb), columns(k, kb), columns(v, kb), heads, causal_mask(qb, kb, kb - qb, q.device)
        )
        out = out.view(n, bc, qb, s).transpose(1, 2).contiguous().view(n, qb * bc, s)
    elif kind == PREV_BLOCK:
        # Shift the key blocks right by one with an all-zero block in front: block b sees block b-1,
        # block 0 sees zeros (uniform weights over zero values: output exactly 0). No mask.
        zeros = k.new_zeros(n, bc, s)
        k = torch.cat([zeros, k[:, :-bc]], dim=1)[:, -qb * bc :]
        v = torch.cat([zeros, v[:, :-bc]], dim=1)[:, -qb * bc :]
        out, _ = dense_attention(
            q.reshape(n * qb, bc, s), k.reshape(n * qb, bc, s), v.reshape(n * qb, bc, s), heads
        )
        out = out.view(n, qb * bc, s)
    else:
        raise ValueError(f"attention kind {kind} is not block-factorised")
    return out[:, front : front + lq]


class FactoredAttention(nn.Module):
    """One layer's attention; `c_attn`, `c_enc_kv`, `c_proj` keep the official names and layouts."""

    def __init__(self, width: int, n_state: int, heads: int, kind: int, block_ctx: int, prime_keep: int):
        super().__init__()
        self.kind = kind
        self.heads = heads
        self.n_state = n_state
        self.block_ctx = block_ctx
        self.prime_keep = prime_keep
        if kind == ENC_DEC:
            self.c_attn = Conv1D(width, n_state)
            self.c_enc_kv = Conv1D(width, 2 * n_state)
        else:
            self.c_attn = Conv1D(width, 3 * n_state)
        self.c_proj = Conv1D(n_state, width)

    def encoder_keys_values(self, encoder_kv: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(N, n_tokens, W) lyric-encoder states -> keys, values (N, n_tokens, S) each."""
        return self.c_enc_kv(encoder_kv.to(dtype)).chunk(2, dim=-1)

    def forward(
        self,
        x: torch.Tensor,
        t0: int = 0,
        cache: LayerCache | None = None,
        encoder_kv: torch.Tensor | None = None,
        keep_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N, k, W) normalised inputs at stream positions [t0, t0 + k) -> (N, k, W), weights.

        Without a cache the chunk must start at 0 (a full forward). With one, keys/values of the
        chunk are stored for later positions. Weights are only kept for DENSE/PRIME/ENC_DEC layers.
        """
        proj = self.c_attn(x)
        weights = None
        if self.kind == ENC_DEC:
            if cache is not None:
                keys, values = cache.keys, cache.values
            else:
                if encoder_kv is None:
                    raise ValueError("an encoder-decoder layer needs the lyric encoder's states")
                keys, values = self.encoder_keys_values(encoder_kv, x.dtype)
            a, weights = dense_attention(proj, keys, values, self.heads, None, keep_weights)
            return self.c_proj(a), weights

        q, k, v = proj.chunk(3, dim=-1)
        if cache is not None and q.shape[1] == 1:
            return self.c_proj(self._step(q, k, v, t0, cache)), None
        if cache is None and t0 != 0:
            raise ValueError("a chunk that does not start the window needs a KV cache")
        if cache is not None:
            past_k, past_v = cache.read(cache.keep_from(t0), t0)
            k, v = torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)
            cache.write(t0, k[:, -q.shape[1] :], v[:, -q.shape[1] :])
        if self.kind in (BLOCK, COLUMN, PREV_BLOCK):
            a = blocked_attention(self.kind, q, k, v, t0, self.block_ctx, self.heads)
        elif self.kind in (DENSE, PRIME):
            if self.kind == PRIME:
                k, v = k[:, : self.prime_keep], v[:, : self.prime_keep]
            mask = causal_mask(q.shape[1], k.shape[1], t0, q.device)
            a, weights = dense_attention(q, k, v, self.heads, mask, keep_weights)
        else:
            raise ValueError(f"unknown attention kind {self.kind}")
        return self.c_proj(a), weights

    def _step(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t: int, cache: LayerCache
    ) -> torch.Tensor:
        """One query at position t: store its key/value, then attend to what its kind allows (no mask)."""
        cache.write(t, k, v)
        bc = self.block_ctx
        if self.kind == PREV_BLOCK:
            block = t // bc
            if block == 0:
                return torch.zeros_like(q)  # attention over the all-zero block
            keys, values = cache.read((block - 1) * bc, block * bc)
        elif self.kind == COLUMN:
            keys, values = cache.keys[:, t % bc : t + 1 : bc], cache.values[:, t % bc : t + 1 : bc]
        else:
            keys, values = cache.read(cache.keep_from(t), t + 1)
        out, _ = dense_attention(q, keys, values, self.heads)
        return out
