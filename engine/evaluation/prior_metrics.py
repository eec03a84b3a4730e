"""Held-out bits per token of the priors: mean `gen_loss` over windows of each song's own codes.

Windows are n_ctx codes long, placed back to back from the start of the song (the tail shorter than a
window is left out, since a prior is trained on full windows only). Every window gets the song's real
label (artist, genre, lyrics, total length and the window's offset), built by the training labeller,
and an upsampler also gets the codes of the level above that cover its window.

Label gain: each window is scored again with the artist of another held-out song (one whose artist
differs), and again with another song's genre. The extra bits per code a wrong label costs is how much
the prior listens to that label: near zero means sampling with that label cannot steer the music.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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


ARTIST_SLOT = slice(3, 4)  # the artist id in a label vector; the genre slots follow it


def genre_slots(label_config: LabelConfig) -> slice:
    return slice(4, 4 + label_config.max_bow)


def partner_songs(song_labels: torch.Tensor, slots: slice) -> list[int | None]:
    """For each song, the next song (in corpus order, wrapping round) whose label differs in `slots`;
    None when every song has the same value there."""
    n = len(song_labels)
    partners: list[int | None] = []
    for i in range(n):
        others = ((i + k) % n for k in range(1, n))
        differs = (j for j in others if not torch.equal(song_labels[j, slots], song_labels[i, slots]))
        partners.append(next(differs, None))
    return partners


@dataclass
class GainTally:
    """Bits per code added by a wrong label, summed over the windows that had a wrong label to try."""

    bits_sum: float = 0.0
    windows: int = 0

    def mean(self) -> float | None:
        return self.bits_sum / self.windows if self.windows else None


@dataclass
class PriorTally:
    counts: torch.Tensor  # histogram of every scored token, for the unigram entropy
    bits_sum: float = 0.0
    windows: int = 0
    artist_gain: GainTally | None = None  # None for a prior without labels
    genre_gain: GainTally | None = None

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
        self.dataset = dataset
        self.labeller = None
        self.tally = PriorTally(torch.zeros(prior.config.l_bins, dtype=torch.float64))
        if label_config is not None:
            timing = timing_range(prior.config)
            self.labeller = CropLabeller(label_config, LenientNames(names), dataset, timing)
            self.swaps = {"artist": ARTIST_SLOT, "genre": genre_slots(label_config)}
            self.tally.artist_gain, self.tally.genre_gain = GainTally(), GainTally()

    @cached_property
    def _song_labels(self) -> torch.Tensor:
        """(songs, label_len): each song's label at offset 0, where its artist and genre ids are read."""
        return self.labeller.labels([Crop(i, 0, EVAL_BLEND) for i in range(len(self.dataset))])

    @cached_property
    def _partners(self) -> dict[str, list[int | None]]:
        return {what: partner_songs(self._song_labels, slots) for what, slots in self.swaps.items()}

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
        if labels is not None:
            for what, gain in (("artist", self.tally.artist_gain), ("genre", self.tally.genre_gain)):
                self._score_wrong_label(song, windows, labels, upper, bits, what, gain)
        self.tally.counts += torch.bincount(windows.reshape(-1), minlength=cfg.l_bins).double()

    def _score_wrong_label(self, song, windows, labels, upper, bits, what: str, gain: GainTally) -> None:
        partner = self._partners[what][song]
        if partner is None:
            return
        slots = self.swaps[what]
        wrong = labels.clone()
        wrong[:, slots] = self._song_labels[partner, slots].to(wrong.device)
        wrong_bits = self.prior.loss(windows.to(wrong.device), wrong, upper)["gen_loss"]
        gain.bits_sum += float((wrong_bits.double() - bits.double()).sum())
        gain.windows += len(windows)

    def unigram_bits(self) -> float | None:
        """Entropy of the scored tokens' histogram: what a prior ignoring all context would score."""
        return entropy_from_counts(self.tally.counts) if self.tally.windows else None
