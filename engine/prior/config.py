"""Frozen, typed descriptions of a Jukebox prior, built once from a reference-style hps dict.

Nothing here touches torch: the modules take plain keyword arguments derived from these, and
`engine.prior.builders` is the only place that reads the loosely-typed reference dicts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Attention kinds a layer can use (the reference's `attn_func` numbers, kept because checkpoints and
# the reference material speak in them).
DENSE = 0  # causal over every earlier position
BLOCK = 1  # causal within the query's block of block_ctx positions
COLUMN = 2  # same offset inside every earlier block ("transpose block"), causal over blocks
PREV_BLOCK = 3  # the whole previous block, unmasked; block 0 sees an all-zero block
ENC_DEC = 6  # queries from the stream, keys/values from the lyric encoder
PRIME = 7  # the first `prime_keep` stream positions (lyrics + a few music tokens), causal

SUPPORTED_FUNCS = frozenset({DENSE, BLOCK, COLUMN, PREV_BLOCK, ENC_DEC, PRIME})

# Label-vector entries of a beat clock (tempo, beats per bar, anchor), between the genres and the lyrics.
CLOCK_SLOTS = 3


@dataclass(frozen=True)
class TransformerConfig:
    width: int
    depth: int
    heads: int
    n_ctx: int  # positions the stack sees (lyrics + music for the single enc-dec prior)
    attn_funcs: tuple[int, ...]  # one attention kind per layer
    blocks: int | None  # n_ctx is factored as blocks x block_ctx
    m_attn: float = 0.25
    m_mlp: float = 1.0
    res_scale: float = 1.0
    encoder_len: int = 0  # lyric encoder positions consumed by ENC_DEC layers
    prime_len: int = 0  # lyric positions of a single enc-dec stream (PRIME layers)

    @property
    def n_state(self) -> int:
        return int(self.m_attn * self.width)

    @property
    def mlp_width(self) -> int:
        return int(self.m_mlp * self.width)

    @property
    def head_dim(self) -> int:
        return self.n_state // self.heads

    @property
    def block_ctx(self) -> int:
        if not self.blocks:
            return self.n_ctx
        return self.n_ctx // self.blocks

    @property
    def prime_keep(self) -> int:
        """Keys a PRIME layer sees.

        Reference quirk: it rounds prime_len up with the NUMBER of blocks, not block_ctx:
        (prime_len // blocks + 1) * blocks, i.e. 448 for the official 384 lyric tokens and 64 blocks,
        so music queries also see the first 64 music positions. Never more than the stream.
        """
        if not self.prime_len:
            return 0
        blocks = self.blocks or 1
        return min((self.prime_len // blocks + 1) * blocks, self.n_ctx)


@dataclass(frozen=True)
class LabelEmbeddingConfig:
    """Artist/genre start embedding and, for top priors, the timing signal."""

    n_genres: int
    n_artists: int
    max_bow_genre_size: int
    include_timing: bool
    t_bins: int
    n_time: int
    sr: float
    min_duration: float | None
    max_duration: float | None
    # The beat clock (`engine.prior.beat_clock`), a conditioner of our own that no official prior has:
    # rows of the beat-phase table (0 = none) and the most beats per bar the bar table knows.
    beat_bins: int = 0
    bar_beats: int = 0

    @property
    def beat_clock(self) -> bool:
        return self.beat_bins > 0


@dataclass(frozen=True)
class ConditionerConfig:
    """Upsampler conditioner: upper-level codes -> (N, n_ctx, width) through a small decoder stack."""

    bins: int
    width: int  # prior width (embedding and output)
    cond_width: int
    depth: int
    m_conv: float
    dilation_growth_rate: int
    dilation_cycle: int | None
    res_scale: bool
    checkpointed_names: bool  # cond_c_res == 1 stores the residual units as `blocks`, else `model`
    down_t: int
    stride_t: int
    n_in: int  # upper-level codes per window


@dataclass(frozen=True)
class LyricsConfig:
    """Separate lyric encoder (5b_lyrics): a small autoregressive transformer over lyric ids."""

    vocab: int
    transformer: TransformerConfig


@dataclass(frozen=True)
class PriorConfig:
    level: int
    levels: int
    l_bins: int  # music codebook size
    n_ctx: int  # music tokens per window
    width: int
    transformer: TransformerConfig
    labels: LabelEmbeddingConfig | None
    conditioner: ConditionerConfig | None
    lyrics: LyricsConfig | None  # separate lyric encoder
    single_enc_dec: bool  # lyrics and music share one stream and one vocabulary
    n_tokens: int  # lyric tokens in the label vector
    n_vocab: int
    vocab_shift: int  # added to music codes in the joint vocabulary (n_vocab for single enc-dec)
    bins: int  # rows of x_emb / x_out
    add_cond_after_transformer: bool
    tied_x_out: bool
    fp16_params: bool
    prime_loss_fraction: float
    raw_to_tokens: int
    cond_downsample: int | None
    alignment_layer: int | None
    alignment_head: int | None

    @property
    def is_top(self) -> bool:
        return self.level == self.levels - 1

    @property
    def label_len(self) -> int:
        if self.labels is None:
            return 0
        clock = CLOCK_SLOTS if self.labels.beat_clock else 0
        return 4 + self.labels.max_bow_genre_size + clock + self.n_tokens

    @property
    def sample_length(self) -> int:
        """Audio samples covered by one window."""
        return self.n_ctx * self.raw_to_tokens

    @property
    def prime_loss_dims(self) -> int:
        return self.n_tokens if (self.lyrics is not None or self.single_enc_dec) else 0

    @property
    def stream_len(self) -> int:
        return self.transformer.n_ctx


def attention_scale(head_dim: int) -> float:
    """Score scale, formed the reference's way ((dh ** -1/4) squared) so fp32 scores round alike."""
    quarter = 1.0 / math.sqrt(math.sqrt(head_dim))
    return quarter * quarter


def config_to_dict(cfg: PriorConfig) -> dict:
    """Plain JSON-ready form of a prior config (saved beside the weights in the project's format)."""
    return asdict(cfg)


def config_from_dict(data: dict) -> PriorConfig:
    """Inverse of `config_to_dict`; rebuilds the nested frozen configs."""

    def transformer(d: dict) -> TransformerConfig:
        return TransformerConfig(**{**d, "attn_funcs": tuple(d["attn_funcs"])})

    def optional(d: dict | None, build):
        return None if d is None else build(d)

    return PriorConfig(
        **{
            **data,
            "transformer": transformer(data["transformer"]),
            "labels": optional(data.get("labels"), lambda d: LabelEmbeddingConfig(**d)),
            "conditioner": optional(data.get("conditioner"), lambda d: ConditionerConfig(**d)),
            "lyrics": optional(
                data.get("lyrics"),
                lambda d: LyricsConfig(**{**d, "transformer": transformer(d["transformer"])}),
            ),
        }
    )
