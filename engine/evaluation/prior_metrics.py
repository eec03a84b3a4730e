"""Held-out bits per token of the priors: mean `gen_loss` over windows of each song's own codes.

Windows are n_ctx codes long, placed back to back from the start of the song (the tail shorter than a
window is left out, since a prior is trained on full windows only). Every window gets the song's real
label (artist, genre, lyrics, total length and the window's offset), built by the training labeller,
and an upsampler also gets the codes of the level above that cover its window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.data.crop_labels import CropLabeller
from engine.data.dataset import Crop, CropDataset
from engine.evaluation.heldout import EVAL_BLEND
from engine.evaluation.vqvae_metrics import entropy_from_counts
from engine.prior.labels import ArtistGenreIds, LabelConfig
from engine.prior.model import JukeboxPrior
from engine.training.prior_task import timing_range

# Windows per forward pass: bounds memory whatever the song length.
WINDOW_BATCH = 8


class LenientNames:
    """ArtistGenreIds for held-out data: a genre with more words than the model takes keeps the first
    ones (as training does) instead of stopping the evaluation."""

    def __init__(self, names: ArtistGenreIds):
        self.names = names

    def artist_id(self, artist: str) -> int:
        return self.names.artist_id(artist)

    def genre_ids(self, genre: str, max_bow: int) -> list[int]:
        return [self.names.genres.id_of_key(word) for word in self.names.genre_words(genre)[:max_bow]]


def window_starts(n_codes: int, n_ctx: int, max_windows: int | None) -> list[int]:
    """Starts of the full windows of a song; evenly thinned to at most max_windows."""
    starts = list(range(0, n_codes - n_ctx + 1, n_ctx))
    if max_windows is not None and len(starts) > max_windows:
        step = len(starts) / max_windows
        starts = [starts[int(i * step)] for i in range(max_windows)]
    return starts


@dataclass
class PriorTally:
    counts: torch.Tensor  # histogram of every scored token, for the unigram entropy
    bits_sum: float = 0.0
    windows: int = 0

    def bits_per_token(self) -> float | None:
        return self.bits_sum / self.windows if self.windows else None


class PriorEvaluator:
    def __init__(
        self,
        prior: JukeboxPrior,
        label_config: LabelConfig | None,
        names: ArtistGenreIds,
        dataset: CropDataset,
        max_windows: int | None = None,
    ):
        self.prior = prior.eval()
        self.max_windows = max_windows
        self.labeller = None
        if label_config is not None:
            timing = timing_range(prior.config)
            self.labeller = CropLabeller(label_config, LenientNames(names), dataset, timing)
        self.tally = PriorTally(torch.zeros(prior.config.l_bins, dtype=torch.float64))

    @torch.no_grad()
    def add(self, song: int, codes: list[torch.Tensor]) -> None:
        """Score one song given its codes per level (bottom first)."""
        cfg = self.prior.config
        tokens = codes[cfg.level][0]
        starts = window_starts(len(tokens), cfg.n_ctx, self.max_windows)
        for first in range(0, len(starts), WINDOW_BATCH):
            batch = starts[first : first + WINDOW_BATCH]
            self._score(song, tokens, codes, batch)

    def _score(self, song: int, tokens: torch.Tensor, codes: list[torch.Tensor], starts: list[int]) -> None:
        cfg = self.prior.config
        device = next(self.prior.parameters()).device
        windows = torch.stack([tokens[s : s + cfg.n_ctx] for s in starts])
        labels = upper = None
        if self.labeller is not None:
            crops = [Crop(song, s * cfg.raw_to_tokens, EVAL_BLEND) for s in starts]
            labels = self.labeller.labels(crops).to(device)
        if cfg.conditioner is not None:
            above = codes[cfg.level + 1][0]
            n_in = cfg.conditioner.n_in
            upper = torch.stack([above[s // cfg.cond_downsample :][:n_in] for s in starts]).to(device)
        bits = self.prior.loss(windows.to(device), labels, upper)["gen_loss"]
        self.tally.bits_sum += float(bits.double().sum())
        self.tally.windows += len(starts)
        self.tally.counts += torch.bincount(windows.reshape(-1), minlength=cfg.l_bins).double()

    def unigram_bits(self) -> float | None:
        """Entropy of the scored tokens' histogram: what a prior ignoring all context would score."""
        return entropy_from_counts(self.tally.counts) if self.tally.windows else None
