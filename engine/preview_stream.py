"""Hear a take while it is still being sampled: decode its top-level codes a piece at a time.

The VQ-VAE decoder is not causal: the audio of a code frame depends on `margin` frames on each side
(`decoder_context_frames`). So after each new piece, the frames that are at least `margin` frames from the
end will never change again; they are decoded (with `margin` frames of context on the left) and handed
out, and the rest waits for the next piece. The audio handed out is the audio a single decode of the
whole take gives (to float rounding), so what the musician heard while sampling is what the finished
preview plays.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.vqvae import VQVAE
from engine.vqvae.encdec import decoder_context_frames


class StreamingPreview:
    """Decode one take of `level` codes as it grows. `context` codes (the song just before the take) make
    its first second sound as it does in the song; their audio is not handed out."""

    def __init__(self, vqvae: VQVAE, level: int, context: np.ndarray | None = None):
        self.vqvae, self.level = vqvae, level
        self.hop = vqvae.hop_lengths[level]
        self.margin = decoder_context_frames(vqvae.decoders[level])
        self._codes = np.asarray(context if context is not None else [], dtype=np.int64)
        self._skip = len(self._codes)  # frames of context, never handed out
        self._done = self._skip  # frames whose audio has been handed out (or skipped)

    @property
    def frames(self) -> int:
        """Frames of the take (context excluded) received so far."""
        return len(self._codes) - self._skip

    def push(self, codes: np.ndarray) -> np.ndarray:
        """Add new codes; return the audio that became final (possibly empty), float32 mono."""
        self._codes = np.concatenate([self._codes, np.asarray(codes, dtype=np.int64).reshape(-1)])
        return self._decode_until(len(self._codes) - self.margin)

    def finish(self) -> np.ndarray:
        """The take is complete: return the audio of the last frames."""
        return self._decode_until(len(self._codes))

    @torch.no_grad()
    def _decode_until(self, end: int) -> np.ndarray:
        if end <= self._done:
            return np.zeros(0, dtype=np.float32)
        lo = max(0, self._done - self.margin)
        hi = min(len(self._codes), end + self.margin)
        window = torch.from_numpy(self._codes[lo:hi])[None]
        audio = self.vqvae.decode(window, self.level)[0].cpu().numpy()
        piece = audio[(self._done - lo) * self.hop : (end - lo) * self.hop]
        self._done = end
        return np.ascontiguousarray(piece, dtype=np.float32)
