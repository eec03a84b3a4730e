"""Explicit, preallocated key/value cache for incremental decoding.

Each layer keeps only what its attention kind can still look at (positions counted from 0 in the
window's stream):

  DENSE, COLUMN   every position so far        capacity n_ctx
  BLOCK           the current block            capacity block_ctx
  PREV_BLOCK      previous + current block     capacity 2 * block_ctx
  PRIME           the first prime_keep         capacity prime_keep
  ENC_DEC         lyric-encoder keys/values    fixed, projected once per window

Rolling kinds store position p at slot p % capacity, so nothing is ever shifted or re-allocated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.prior.config import BLOCK, COLUMN, DENSE, ENC_DEC, PREV_BLOCK, PRIME, TransformerConfig


class LayerCache:
    """Keys/values of one layer, (N, capacity, n_state) each."""

    def __init__(self, kind: int, keys: torch.Tensor, values: torch.Tensor, block_ctx: int, limit: int):
        self.kind = kind
        self.keys = keys
        self.values = values
        self.block_ctx = block_ctx
        self.limit = limit  # positions at or beyond this are never stored (PRIME); else huge

    @property
    def capacity(self) -> int:
        return self.keys.shape[1]

    def keep_from(self, t: int) -> int:
        """First position a query at position >= t can still attend to."""
        bc = self.block_ctx
        if self.kind == BLOCK:
            return (t // bc) * bc
        if self.kind == PREV_BLOCK:
            return max(t // bc - 1, 0) * bc
        return 0

    def _slots(self, start: int, end: int) -> slice | torch.Tensor:
        first = start % self.capacity
        if first + (end - start) <= self.capacity:
            return slice(first, first + end - start)
        return torch.arange(start, end, device=self.keys.device) % self.capacity

    def read(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values of positions [start, end), (N, end - start, n_state)."""
        end = min(end, self.limit)
        if end <= start:
            empty = self.keys[:, :0]
            return empty, self.values[:, :0]
        slots = self._slots(start, end)
        if isinstance(slots, slice):
            return self.keys[:, slots], self.values[:, slots]
        return self.keys.index_select(1, slots), self.values.index_select(1, slots)

    def write(self, t0: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store positions [t0, t0 + k) of (N, k, n_state) keys/values.

        Only the last `capacity` positions can be held; they include everything a later query (or
        the current one, for a single step) may attend to, since t1 - keep_from(t1) <= capacity.
        """
        t1 = t0 + keys.shape[1]
        start = max(t0, t1 - self.capacity)
        end = min(t1, self.limit)
        if end <= start:
            return
        k_new, v_new = keys[:, start - t0 : end - t0], values[:, start - t0 : end - t0]
        slots = self._slots(start, end)
        if isinstance(slots, slice):
            self.keys[:, slots] = k_new
            self.values[:, slots] = v_new
        else:
            self.keys.index_copy_(1, slots, k_new.to(self.keys.dtype))
            self.values.index_copy_(1, slots, v_new.to(self.values.dtype))

    @staticmethod
    def concat(caches: Sequence[LayerCache]) -> LayerCache:
        """The streams of every cache, one after another (caches of the same layer of one prior)."""
        first = caches[0]
        keys = torch.cat([c.keys for c in caches])
        return LayerCache(
            first.kind, keys, torch.cat([c.values for c in caches]), first.block_ctx, first.limit
        )

    def select(self, index: torch.Tensor) -> LayerCache:
        return LayerCache(
            self.kind,
            self.keys.index_select(0, index),
            self.values.index_select(0, index),
            self.block_ctx,
            self.limit,
        )


def capacity_for(kind: int, cfg: TransformerConfig) -> int:
    if kind in (DENSE, COLUMN):
        return cfg.n_ctx
    if kind == BLOCK:
        return cfg.block_ctx
    if kind == PREV_BLOCK:
        return 2 * cfg.block_ctx
    if kind == PRIME:
        return cfg.prime_keep
    if kind == ENC_DEC:
        return cfg.encoder_len
    raise ValueError(f"no cache layout for attention kind {kind}")


class KVCache:
    """One LayerCache per transformer layer, for a batch of N streams of one window."""

    def __init__(self, layers: list[LayerCache]):
        self.layers = layers

    @classmethod
    def allocate(
        cls, cfg: TransformerConfig, batch: int, device: torch.device, dtype: torch.dtype
    ) -> KVCache:
        layers = []
        for kind in cfg.attn_funcs:
            shape = (batch, capacity_for(kind, cfg), cfg.n_state)
            limit = cfg.prime_keep if kind == PRIME else cfg.n_ctx
            layers.append(
                LayerCache(
                    kind,
                    torch.zeros(shape, device=device, dtype=dtype),
                    torch.zeros(shape, device=device, dtype=dtype),
                    cfg.block_ctx,
                    limit,
                )
            )
        return cls(layers)

    def __getitem__(self, layer: int) -> LayerCache:
        return self.layers[layer]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def batch_size(self) -> int:
        return self.layers[0].keys.shape[0] if self.layers else 0

    def select(self, index: torch.Tensor) -> KVCache:
        """A new cache whose stream i is a copy of stream index[i] of this one (fork / reorder)."""
        return KVCache([layer.select(index) for layer in self.layers])

    @staticmethod
    def concat(caches: Sequence[KVCache]) -> KVCache:
        """One cache holding the streams of `caches` in order (same prior, same window)."""
        return KVCache(
            [LayerCache.concat(layers) for layers in zip(*(c.layers for c in caches), strict=True)]
        )

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.layers for t in (layer.keys, layer.values))
