"""Held-out bits per code of an upsampler by position inside its window.

An upsampler's conditioner reads the codes of the level above across the whole window, through
convolutions that see both ways. The codes near a window's end therefore have no upper codes after
them in view, and the prior predicts them worse. This measures how much worse and over how many
positions, which sets how far a render's windows should look ahead (`plan_level`'s lookahead).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.api import ComposeEngine, LabelSpec
from engine.evaluation.conditioning import encode_song

_LN2 = float(np.log(2.0))


def bits_by_position(
    engine: ComposeEngine,
    level: int,
    songs: Sequence[tuple[np.ndarray, LabelSpec]],
    windows_per_song: int,
    seed: int = 0,
) -> np.ndarray:
    """Mean bits per code at each of the level-`level` upsampler's n_ctx window positions, over
    `windows_per_song` windows at random (upper-code aligned) starts in each song's own codes.

    songs: (mono audio at the model's rate, its labels)."""
    if engine.bundle.upsamplers is None:
        raise ValueError(f"{engine.bundle.folder} has no upsamplers")
    up = engine.bundle.upsamplers[level]
    cfg = up.config
    rng = np.random.default_rng(seed)
    total, count = np.zeros(cfg.n_ctx), 0
    for audio, spec in songs:
        codes = encode_song(engine, audio, [level, level + 1])
        own, upper = codes[level].long(), codes[level + 1].long()
        slots = (len(own) - cfg.n_ctx) // cfg.cond_downsample
        if slots < 0:
            raise ValueError(f"a song is shorter than one level-{level} window ({cfg.n_ctx} codes)")
        with torch.no_grad():
            for _ in range(windows_per_song):
                start = int(rng.integers(0, slots + 1)) * cfg.cond_downsample
                tokens = own[start : start + cfg.n_ctx][None]
                above = upper[start // cfg.cond_downsample : (start + cfg.n_ctx) // cfg.cond_downsample][None]
                label = engine.label(spec, start * cfg.raw_to_tokens, up)
                labels = None if label is None else torch.tensor([label.y])
                logits = up.logits(tokens, labels, above)
                total += F.cross_entropy(logits[0].float(), tokens[0], reduction="none").cpu().numpy() / _LN2
                count += 1
    return total / max(count, 1)
