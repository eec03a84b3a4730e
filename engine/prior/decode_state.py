"""What incremental decoding carries between calls: the KV cache, the position, the per-window
conditioning, and the logits for the next token."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.prior.kv_cache import KVCache


@dataclass
class DecodeState:
    """State of N streams decoding one window. `JukeboxPrior.extend` updates it in place.

    position: stream positions already run (the next one to run). For 1b_lyrics the stream starts
      with the lyric tokens, so music token j sits at stream position music_offset + j.
    x_cond: (N, stream_len, W) conditioning added at every position, or None.
    next_logits: (N, bins) logits (before temperature) for the next token.
    """

    cache: KVCache
    position: int
    x_cond: torch.Tensor | None
    next_logits: torch.Tensor
    music_offset: int = 0

    @property
    def batch_size(self) -> int:
        return self.next_logits.shape[0]

    @property
    def music_tokens(self) -> int:
        """Music tokens fed so far."""
        return max(self.position - 1 - self.music_offset, 0)

    def select(self, index: torch.Tensor | list[int]) -> DecodeState:
        """A new state whose stream i copies stream index[i] of this one (branch, reorder, prune)."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.next_logits.device).view(-1)
        return DecodeState(
            cache=self.cache.select(index),
            position=self.position,
            x_cond=None if self.x_cond is None else self.x_cond.index_select(0, index),
            next_logits=self.next_logits.index_select(0, index),
            music_offset=self.music_offset,
        )

    @staticmethod
    def concat(states: list[DecodeState]) -> DecodeState:
        """One state running the streams of `states` in order, so they step in one forward call (label
        guidance's conditioned and neutral streams). They must stand at the same position."""
        first = states[0]
        if any(s.position != first.position or s.music_offset != first.music_offset for s in states):
            raise ValueError("only states at the same position can run as one batch")
        conds = [s.x_cond for s in states]
        return DecodeState(
            cache=KVCache.concat([s.cache for s in states]),
            position=first.position,
            x_cond=None if conds[0] is None else torch.cat(conds),
            next_logits=torch.cat([s.next_logits for s in states]),
            music_offset=first.music_offset,
        )

    def fork(self, n: int) -> DecodeState:
        """n branches of every stream (stream-major), sharing the already-computed prefix."""
        if n < 1:
            raise ValueError(f"fork needs n >= 1, got {n}")
        index = torch.arange(self.batch_size, device=self.next_logits.device).repeat_interleave(n)
        return self.select(index)
