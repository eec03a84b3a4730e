"""Training a top prior or an upsampler on codes of a frozen VQ-VAE (paper section 4).

Each crop is `n_ctx * hop` samples, encoded by the VQ-VAE to exactly n_ctx codes of the prior's level
(and, for an upsampler, n_ctx / cond_downsample codes of the level above: z_cond). The loss is the
prior's own bits-per-token loss, averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
from torch import nn

from engine.data.code_cache import CodeCache, aligned
from engine.data.crop_labels import CropLabeller, TimingRange
from engine.data.dataset import CropDataset
from engine.data.genre_tempi import genre_tempi
from engine.data.vocabulary import Vocabulary
from engine.prior.builders import build_prior
from engine.prior.config import PriorConfig
from engine.prior.labels import LabelConfig
from engine.prior.model import JukeboxPrior
from engine.training.config import TrainConfig
from engine.training.distributed_setup import Context
from engine.vqvae import VQVAE

# Tells the label-dropout draws apart from every other random stream seeded by (seed, step).
LABEL_DROPOUT_STREAM = 0x1ABE1
INPUT_NOISE_STREAM = 0x0115E  # and the input-noise draws


class PriorLoss(nn.Module):
    """Routes the loss through `forward`, so DistributedDataParallel sees the pass and syncs gradients."""

    def __init__(self, prior: JukeboxPrior):
        super().__init__()
        self.prior = prior

    def forward(self, tokens, labels, upper_tokens, neutral=None, inputs=None, first_scored=None):
        neutral = False if neutral is None else neutral
        losses = self.prior.loss(
            tokens, labels, upper_tokens, neutral, inputs=inputs, first_scored=first_scored
        )
        return {name: value.mean() for name, value in losses.items()}


def vqvae_hps(vqvae: VQVAE) -> dict:
    """The VQ-VAE fields `engine.prior.builders.prior_config` reads."""
    c = vqvae.config
    return {
        "levels": c.levels,
        "downs_t": c.downs_t,
        "strides_t": c.strides_t,
        "l_bins": c.l_bins,
        "sr": c.sample_rate,
    }


def label_config(cfg: PriorConfig, vocabulary: Vocabulary) -> LabelConfig:
    labels = cfg.labels
    v3, clock = vocabulary.v3, labels.beat_clock
    return LabelConfig(v3, labels.max_bow_genre_size, cfg.n_tokens, cfg.sample_length, clock)


def timing_range(cfg: PriorConfig) -> TimingRange | None:
    labels = cfg.labels
    if labels is None or not labels.include_timing:
        return None
    return TimingRange(round(labels.min_duration * labels.sr), round(labels.max_duration * labels.sr))


@torch.no_grad()
def init_embeddings_(prior: JukeboxPrior, std: float = 0.02) -> JukeboxPrior:
    """The reference's GPT-2 style start for the embedding tables of a new prior.

    torch's default (std 1) makes the first logits so large that a fresh prior starts far above the
    log2(l_bins) bits of a uniform guess; the reference draws every embedding with std 0.02 or less.
    """
    for module in prior.modules():
        if isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
    return prior


def with_label_rows(prior: JukeboxPrior, n_artists: int, n_genres: int) -> JukeboxPrior:
    """A copy of `prior` whose artist/genre tables have at least these rows.

    New rows start at the mean of the existing ones (a neutral "some artist" embedding); existing rows,
    and so the official ids, are kept as they are.
    """
    cfg = prior.config
    labels = cfg.labels
    if n_artists <= labels.n_artists and n_genres <= labels.n_genres:
        return prior
    grown_labels = replace(
        labels, n_artists=max(n_artists, labels.n_artists), n_genres=max(n_genres, labels.n_genres)
    )
    grown = build_prior(replace(cfg, labels=grown_labels))
    state = prior.state_dict()
    for table in ("artist_emb", "bow_genre_emb"):
        key = f"y_emb.{table}.emb.weight"
        old = state[key]
        rows = grown.state_dict()[key].shape[0]
        state[key] = torch.cat([old, old.mean(0, keepdim=True).expand(rows - old.shape[0], -1)])
    grown.load_state_dict(state)
    return grown


@dataclass
class PriorTask:
    model: JukeboxPrior
    vqvae: VQVAE
    dataset: CropDataset
    labeller: CropLabeller
    vocabulary: Vocabulary
    train: TrainConfig
    context: Context
    kind: str = "prior"

    code_cache: CodeCache | None = None

    def __post_init__(self) -> None:
        self.vqvae.eval().requires_grad_(False)
        self.loss_module = PriorLoss(self.model)

    @property
    def module(self) -> nn.Module:
        return self.loss_module

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """(tokens, labels, upper tokens or None); with label dropout, the rows to train neutral (else
        None); with input noise, the codes the prior reads (the tokens, some replaced at random); on songs
        whose artist changes, each row's first scored code (`CropLabeller.first_scored`)."""
        batch, crops = self._cached_batch(step) if self.code_cache is not None else self._encoded_batch(step)
        dropout = self.train.label_dropout > 0 and self.model.config.labels is not None
        neutral = self._neutral_rows(step).to(self.context.device) if dropout else None
        inputs = self._noisy_inputs(step, batch[0]) if self.train.input_noise > 0 else None
        first_scored = None
        if self._has_changes:
            hop = self.vqvae.hop_lengths[self.model.config.level]
            first_scored = torch.tensor(self.labeller.first_scored(crops, hop), device=self.context.device)
        extra = (neutral, inputs, first_scored)
        while extra and extra[-1] is None:  # a plain batch stays (tokens, labels, upper)
            extra = extra[:-1]
        return (*batch, *extra)

    @cached_property
    def _has_changes(self) -> bool:
        return any(song.record.artist_changes for song in self.dataset.songs)

    def _noisy_inputs(self, step: int, tokens: torch.Tensor) -> torch.Tensor:
        """The tokens with a share `input_noise` of them replaced by uniformly drawn codes. The draws are
        the global batch's, from a stream of their own seeded by the run's seed and the step, and each
        rank keeps its rows: so a resumed run, and a run on more processes, read what one process would."""
        ctx, size = self.context, self.train.batch_size
        # (The trailing 0 keeps the draws the default model's clock stage was trained with, on one process.)
        rng = np.random.default_rng([self.train.seed, step, INPUT_NOISE_STREAM, 0])
        shape = (size, tokens.shape[1])
        replace_at = rng.random(shape) < self.train.input_noise
        random_codes = rng.integers(0, self.model.config.l_bins, shape)
        per_rank = size // ctx.world_size
        mine = slice(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)
        noisy = torch.from_numpy(replace_at[mine]).to(tokens.device)
        return torch.where(noisy, torch.from_numpy(random_codes[mine]).to(tokens), tokens)

    def _neutral_rows(self, step: int) -> torch.Tensor:
        """This rank's share of the global batch's label-dropout draws: a stream of its own, seeded by
        the run's seed and the step, so the crops are those of a run without dropout and a resumed run
        draws what an uninterrupted one does."""
        ctx, size = self.context, self.train.batch_size
        draws = np.random.default_rng([self.train.seed, step, LABEL_DROPOUT_STREAM]).random(size)
        per_rank = size // ctx.world_size
        mine = draws[ctx.rank * per_rank : (ctx.rank + 1) * per_rank]
        return torch.from_numpy(mine < self.train.label_dropout)

    def _encoded_batch(self, step: int) -> tuple[tuple, list]:
        cfg = self.model.config
        audio, crops = self.dataset.batch(
            step, self.train.batch_size, self.train.seed, self.context.rank, self.context.world_size
        )
        needed = [cfg.level] if cfg.conditioner is None else [cfg.level, cfg.level + 1]
        codes = self.vqvae.encode_levels(audio.to(self.context.device), needed)
        tokens = codes[cfg.level][:, : cfg.n_ctx]
        upper = None
        if cfg.conditioner is not None:
            upper = codes[cfg.level + 1][:, : cfg.conditioner.n_in]
        labels = self.labeller.labels(crops).to(self.context.device)
        return (tokens, labels, upper), crops

    def _cached_batch(self, step: int) -> tuple[tuple, list]:
        """The same crops as `batch`, moved onto the top hop, sliced from the whole-song codes; and the
        crops."""
        cfg, cache, ctx = self.model.config, self.code_cache, self.context
        per_rank = self.train.batch_size // ctx.world_size
        planned = self.dataset.plan(step, self.train.batch_size, self.train.seed)
        crops = [aligned(crop, self.vqvae.hop_lengths[-1]) for crop in planned]
        crops = crops[ctx.rank * per_rank : (ctx.rank + 1) * per_rank]

        def stack(level: int, n: int) -> torch.Tensor:
            return torch.from_numpy(np.stack([cache.crop(level, crop, n) for crop in crops])).to(ctx.device)

        tokens = stack(cfg.level, cfg.n_ctx)
        upper = stack(cfg.level + 1, cfg.conditioner.n_in) if cfg.conditioner is not None else None
        labels = self.labeller.labels(crops).to(ctx.device)
        return (tokens, labels, upper), crops

    def forward(self, module, batch) -> tuple[torch.Tensor, dict]:
        losses = module(*batch)
        return losses["loss"], losses

    def metrics(self, batch, losses: dict) -> dict[str, float]:
        return {name: float(losses[name].detach()) for name in ("gen_loss", "prime_loss")}

    def log_samples(self, writer, step: int, batch, output) -> None:
        """Audio samples of a prior need a sampling run; the app does that from the saved model."""

    def companions(self) -> dict[str, nn.Module]:
        return {}

    def checkpoint_extra(self) -> dict:
        extra = {"vocabulary": self.vocabulary.to_dict(), "level": self.model.config.level}
        if self.model.config.labels is not None and self.model.config.labels.beat_clock:
            extra["genre_tempi"] = self._genre_tempi
        return extra

    @cached_property
    def _genre_tempi(self) -> dict[str, list]:
        return genre_tempi([song.record for song in self.dataset.songs])
