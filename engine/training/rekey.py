"""Re-keying a prior to a retrained VQ-VAE level: a head start for the fine-tune that must follow.

Retraining a level of the VQ-VAE (`retrain_levels`) gives that level new codes: code 17 no longer sounds as
it did, so every prior that reads or writes the level (the top prior, the upsampler conditioned on it) is
wrong about every code. Training such a prior again from scratch throws away everything else it knows
(labels, timing, the beat clock, how music moves). Re-keying keeps all of that and replaces only what is
tied to code identities: each new code's embedding row becomes the mean of the old codes' rows, weighted by
how often each old code sits at the same frame as the new one when the training songs are encoded by both
VQ-VAEs. The mean of rows pointing different ways is shorter than they are, so it is scaled to their mean
length, weighted the same way: a new code that is exactly one old code gets that code's row. A new code
that never occurs keeps its row. The model is then fine-tuned on the new codes as usual; the re-keyed
start only has to be close, not right.

Only levels whose encoder or codebook differ are re-keyed: a level's codes depend on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from engine.prior.model import JukeboxPrior
from engine.vqvae import VQVAE


def code_pairs(old_songs: Sequence[np.ndarray], new_songs: Sequence[np.ndarray], bins: int) -> np.ndarray:
    """How often old code i and new code j encode the same frame: a (bins, bins) matrix of counts."""
    counts = np.zeros((bins, bins), dtype=np.float64)
    for old, new in zip(old_songs, new_songs, strict=True):
        if len(old) != len(new):
            raise ValueError(
                f"the two encodings of a song differ in length ({len(old)} and {len(new)} codes)"
            )
        np.add.at(counts, (old, new), 1.0)
    return counts


def rekeyed_rows(rows: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """Rows indexed by new codes, from `rows` indexed by old codes and `counts` from `code_pairs`."""
    old = rows.detach().double()
    weights = torch.from_numpy(counts).to(old.device)
    seen = weights.sum(dim=0)[:, None]
    mean = (weights.T @ old) / seen.clamp(min=1.0)
    length = (weights.T @ old.norm(dim=1, keepdim=True)) / seen.clamp(min=1.0)
    fresh = mean * (length / mean.norm(dim=1, keepdim=True).clamp(min=1e-12))
    return torch.where(seen > 0, fresh, old).to(rows.dtype)


def changed_levels(old: VQVAE, new: VQVAE) -> list[int]:
    """The levels whose codes can differ between two VQ-VAEs of one shape: those whose encoder or codebook
    weights differ."""
    old_state, new_state = old.state_dict(), new.state_dict()
    changed = []
    for level in range(old.config.levels):
        prefixes = (f"encoders.{level}.", f"bottleneck.level_blocks.{level}.")
        names = [name for name in old_state if name.startswith(prefixes)]
        if any(not torch.equal(old_state[name], new_state[name]) for name in names):
            changed.append(level)
    return changed


def code_tables(prior: JukeboxPrior) -> dict[int, list[torch.Tensor]]:
    """Views of the parameters whose rows belong to one code of a level, by level: the prior's own input
    embedding (and its output layer when not tied to it), and an upsampler's embedding of the level above.
    A single encoder-decoder prior's tables hold the lyric ids first; only the code rows are returned."""
    cfg = prior.config
    codes = slice(cfg.vocab_shift, cfg.vocab_shift + cfg.l_bins)
    own = [prior.prior.x_emb.weight[codes]]
    x_out = getattr(prior.prior, "x_out", None)
    if x_out is not None and x_out.weight is not prior.prior.x_emb.weight:
        own.append(x_out.weight[codes])
    tables = {cfg.level: own}
    if cfg.conditioner is not None:
        tables[cfg.level + 1] = [prior.conditioner_blocks[0].x_emb.weight]
    return tables


@torch.no_grad()
def rekey(
    prior: JukeboxPrior,
    old_codes: dict[int, Sequence[np.ndarray]],
    new_codes: dict[int, Sequence[np.ndarray]],
    say: Callable[[str], None] = print,
) -> None:
    """Re-key, in place, the code tables of `prior` for each level in `old_codes`, from the old and the
    new encodings of the same songs (`old_codes[level][song]`)."""
    for level, tables in code_tables(prior).items():
        if level not in old_codes:
            continue
        old, new = old_codes[level], new_codes[level]
        counts = code_pairs(old, new, tables[0].shape[0])
        for table in tables:
            table.copy_(rekeyed_rows(table, counts))
        kept = np.trace(counts) / counts.sum()
        partner = counts.max(axis=0).sum() / counts.sum()
        say(
            f"level {level}: re-keyed {len(tables)} code table(s) from {int(counts.sum())} frames "
            f"({kept:.1%} kept their code; each new code's commonest old one accounts for {partner:.1%})"
        )
