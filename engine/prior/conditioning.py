"""Conditioning inputs of a prior: the label start embedding, the timing signal, and the upsampler's
conditioner on upper-level codes. Module and parameter names follow the official checkpoints."""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.phase_split_conv import PhaseSplitConvTranspose1d
from engine.prior.beat_clock import clock_bins
from engine.prior.config import CLOCK_SLOTS, ConditionerConfig, LabelEmbeddingConfig
from engine.prior.conv1d import LayerNorm
from engine.prior.timing import timing_bins


class _Table(nn.Module):
    """An embedding table stored as `<name>.emb.weight`."""

    def __init__(self, rows: int, width: int):
        super().__init__()
        self.emb = nn.Embedding(rows, width)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.emb(index)


class LabelConditioner(nn.Module):
    """Label vector -> start embedding (N, 1, W) and, for top priors, timing embedding (N, n_time, W).

    The label layout is [total_length, offset, sample_length, artist, genre x max_bow (-1 = empty)],
    then, for a prior with a beat clock, [tempo, beats per bar, anchor] (`engine.prior.beat_clock`).
    """

    def __init__(self, cfg: LabelEmbeddingConfig, width: int):
        super().__init__()
        self.config = cfg
        self.bow_genre_emb = _Table(cfg.n_genres, width)
        self.artist_emb = _Table(cfg.n_artists, width)
        if cfg.include_timing:
            self.total_length_emb = _Table(cfg.t_bins, width)
            self.absolute_pos_emb = _Table(cfg.t_bins, width)
            self.relative_pos_emb = _Table(cfg.t_bins, width)
        if cfg.beat_clock:
            self.beat_phase_emb = _Table(cfg.beat_bins + 1, width)
            self.bar_beat_emb = _Table(cfg.bar_beats + 1, width)

    def start_embedding(
        self, labels: torch.Tensor, blend: torch.Tensor | None = None, neutral: bool | torch.Tensor = False
    ) -> torch.Tensor:
        """(N, 1, W): the artist embedding plus the genre words' embeddings.

        blend: optional (N, 2) rows [other artist id, weight w] (see `engine.prior.labels.blend_rows`);
        the artist term becomes (1 - w) * e(artist) + w * e(other), exactly e(artist) at w = 0 and
        e(other) at w = 1.
        neutral: every artist and genre word replaced by the mean of the known rows (label guidance's
        contrast, `engine.prior.sampler`): a start token that names no artist and no genre in particular.
        Either every row (True) or the rows an (N,) bool tensor marks (training with label dropout).
        """
        cfg = self.config
        artist = labels[:, 3:4]
        genres = labels[:, 4 : 4 + cfg.max_bow_genre_size]
        _check_ids("artist", artist, cfg.n_artists, allow_empty=False)
        _check_ids("genre", genres, cfg.n_genres, allow_empty=True)
        present = (genres >= 0).to(self.bow_genre_emb.emb.weight.dtype).unsqueeze(2)
        if isinstance(neutral, bool) and neutral:
            return self._neutral(present)
        genre_sum = (self.bow_genre_emb(genres.clamp(min=0)) * present).sum(dim=1, keepdim=True)
        artist_emb = self.artist_emb(artist)  # (N, 1, W)
        if blend is not None:
            artist_emb = self._blended(artist_emb, blend)
        named = genre_sum + artist_emb
        if isinstance(neutral, bool):
            return named
        rows = neutral.to(device=named.device, dtype=torch.bool)
        if rows.shape != (named.shape[0],):
            shape = tuple(rows.shape)
            raise ValueError(f"neutral rows must be an ({named.shape[0]},) bool tensor, got {shape}")
        return torch.where(rows.view(-1, 1, 1), self._neutral(present), named)

    def _neutral(self, present: torch.Tensor) -> torch.Tensor:
        """As many mean genre words as each label has words, and the mean artist: (N, 1, W)."""
        genre_sum = present.sum(dim=1, keepdim=True) * _known_mean(self.bow_genre_emb.emb.weight)
        return genre_sum + _known_mean(self.artist_emb.emb.weight)

    def _blended(self, artist_emb: torch.Tensor, blend: torch.Tensor) -> torch.Tensor:
        n = artist_emb.shape[0]
        if blend.dim() != 2 or blend.shape != (n, 2):
            shape = tuple(blend.shape)
            raise ValueError(f"an artist blend must be ({n}, 2) rows [other artist id, weight], got {shape}")
        device = artist_emb.device
        other = blend[:, 0:1].round().long().to(device)
        weight = blend[:, 1].to(device=device, dtype=torch.float32).view(n, 1, 1)
        _check_ids("blend artist", other, self.config.n_artists, allow_empty=False)
        if not bool(((weight >= 0) & (weight <= 1)).all()):
            raise ValueError(f"artist blend weights must lie in [0, 1], got {blend[:, 1].tolist()}")
        return mix_artists(artist_emb, self.artist_emb(other), weight)

    def timing_embedding(self, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        total, absolute, relative = timing_bins(
            labels[:, 0],
            labels[:, 1],
            labels[:, 2],
            n_time=cfg.n_time,
            t_bins=cfg.t_bins,
            sr=cfg.sr,
            min_duration=cfg.min_duration,
            max_duration=cfg.max_duration,
        )
        timing = (
            self.total_length_emb(total) + self.absolute_pos_emb(absolute) + self.relative_pos_emb(relative)
        )
        if not cfg.beat_clock:
            return timing
        first = 4 + cfg.max_bow_genre_size
        phase, beat = clock_bins(
            labels[:, 1],
            labels[:, 2],
            labels[:, first : first + CLOCK_SLOTS],
            n_time=cfg.n_time,
            sr=cfg.sr,
            beat_bins=cfg.beat_bins,
            bar_beats=cfg.bar_beats,
        )
        return timing + self.beat_phase_emb(phase) + self.bar_beat_emb(beat)


def mix_artists(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """(1 - w) * a + w * b in float32, cast back to a's dtype; a at w = 0 and b at w = 1 bit for bit.

    The one place the blend is computed, so a table row replaced by `mix_artists(e(A), e(B), w)` gives
    the same start embedding as the blend itself (the tests' equivalence).
    """
    w = torch.as_tensor(weight, dtype=torch.float32, device=a.device)
    mixed = ((1.0 - w) * a.float() + w * b.float()).to(a.dtype)
    return torch.where(w == 0, a, torch.where(w == 1, b, mixed))


def _known_mean(table: torch.Tensor) -> torch.Tensor:
    """(W,) mean of an embedding table's rows, leaving out row 0 ("unknown" in every vocabulary, and never
    trained in ours) when there are others."""
    rows = table[1:] if table.shape[0] > 1 else table
    return rows.float().mean(dim=0).to(table.dtype)


def _check_ids(name: str, ids: torch.Tensor, rows: int, allow_empty: bool) -> None:
    low = -1 if allow_empty else 0
    if bool((ids < low).any() or (ids >= rows).any()):
        raise ValueError(f"{name} id out of range for this prior (0..{rows - 1}): {ids.tolist()}")


class _ResidualUnit(nn.Module):
    """x + scale * Conv1x1(ReLU(Conv3_dilated(ReLU(x)))), stored as `model.{1,3}`."""

    def __init__(self, channels: int, hidden: int, dilation: int, scale: float):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(channels, hidden, 3, 1, dilation, dilation),
            nn.ReLU(),
            nn.Conv1d(hidden, channels, 1, 1, 0),
        )
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.model(x)


class _ResidualStack(nn.Module):
    """Dilations growth**(r % cycle), not reversed. Reference quirk: with cond_c_res == 1 the units
    are kept under the name `blocks`, otherwise `model`, and the checkpoints follow that name."""

    def __init__(self, cfg: ConditionerConfig):
        super().__init__()
        scale = 1.0 / math.sqrt(cfg.depth) if cfg.res_scale else 1.0
        units = []
        for r in range(cfg.depth):
            power = r if cfg.dilation_cycle is None else r % cfg.dilation_cycle
            units.append(
                _ResidualUnit(
                    cfg.cond_width, int(cfg.m_conv * cfg.cond_width), cfg.dilation_growth_rate**power, scale
                )
            )
        self._name = "blocks" if cfg.checkpointed_names else "model"
        setattr(self, self._name, nn.Sequential(*units) if self._name == "model" else nn.ModuleList(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in getattr(self, self._name):
            x = unit(x)
        return x


class _UpsampleStack(nn.Module):
    """Conv(W -> cw, 3), then down_t times [residual stack, ConvTranspose(x stride)]: `model.i`."""

    def __init__(self, cfg: ConditionerConfig):
        super().__init__()
        kernel, pad = 2 * cfg.stride_t, cfg.stride_t // 2
        layers: list[nn.Module] = [nn.Conv1d(cfg.width, cfg.cond_width, 3, 1, 1)]
        for i in range(cfg.down_t):
            out = cfg.width if i == cfg.down_t - 1 else cfg.cond_width
            layers.append(
                nn.Sequential(
                    _ResidualStack(cfg),
                    PhaseSplitConvTranspose1d(cfg.cond_width, out, kernel, cfg.stride_t, pad),
                )
            )
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UpsamplerConditioner(nn.Module):
    """Upper-level codes (N, n_ctx / cond_downsample) -> x_cond (N, n_ctx, W)."""

    def __init__(self, cfg: ConditionerConfig):
        super().__init__()
        self.config = cfg
        self.x_emb = nn.Embedding(cfg.bins, cfg.width)
        self.cond = _UpsampleStack(cfg)
        self.ln = LayerNorm(cfg.width)

    def forward(self, upper_tokens: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if upper_tokens.dim() != 2 or upper_tokens.shape[1] != cfg.n_in:
            raise ValueError(f"upper_tokens must be (N, {cfg.n_in}) codes, got {tuple(upper_tokens.shape)}")
        if bool((upper_tokens < 0).any() or (upper_tokens >= cfg.bins).any()):
            raise ValueError(f"upper-level codes must lie in 0..{cfg.bins - 1}")
        x = self.x_emb(upper_tokens.long())  # (N, T_up, W)
        x = self.cond(x.permute(0, 2, 1))  # (N, W, T_up) -> (N, W, n_ctx)
        return self.ln(x.permute(0, 2, 1))  # (N, n_ctx, W)
