"""Turn reference-style hps dicts into frozen configs, and configs into prior modules.

The only place that reads the loosely-typed reference dicts. A prior's own dict carries reference
DEFAULTS for the VQ-VAE fields (l_bins, levels, downs_t, strides_t); like the reference we take those
from the VQ-VAE's dict instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from engine.prior.config import (
    BLOCK,
    COLUMN,
    DENSE,
    ENC_DEC,
    PREV_BLOCK,
    PRIME,
    ConditionerConfig,
    LabelEmbeddingConfig,
    LyricsConfig,
    PriorConfig,
    TransformerConfig,
)
from engine.prior.presets import REFERENCE_DEFAULTS

_ROW_COL_PREV = (BLOCK, COLUMN, PREV_BLOCK)


def _layer_kind(attn_order: int, d: int) -> int:
    """Attention kind of layer d for the reference's attn_order patterns that use kinds we implement."""
    if attn_order == 0:
        return DENSE
    if attn_order == 1:
        return (BLOCK, COLUMN)[d % 2]
    if attn_order == 2:
        return _ROW_COL_PREV[d % 3]
    if attn_order == 6:
        return (*_ROW_COL_PREV, ENC_DEC)[d % 4]
    if attn_order == 7:
        return (*_ROW_COL_PREV * 5, ENC_DEC)[d % 16]
    if attn_order == 8:
        return (*_ROW_COL_PREV * 3, ENC_DEC)[d % 10]
    if attn_order == 9:
        return (*_ROW_COL_PREV, DENSE)[d % 4]
    if attn_order == 10:
        # 79-layer cycle: nine row/col/prev layers, then seven groups of nine + one enc-dec layer.
        cycle = (*_ROW_COL_PREV * 3, *((*_ROW_COL_PREV * 3, ENC_DEC) * 7))
        return cycle[d % 79]
    if attn_order in (11, 12):
        special = ENC_DEC if attn_order == 11 else PRIME
        if d % 16 == 15:
            return (special, special, DENSE)[d % 3]
        return _ROW_COL_PREV[d % 3]
    raise ValueError(f"attn_order {attn_order} uses attention kinds this engine does not implement")


def layer_kinds(attn_order: int, depth: int) -> tuple[int, ...]:
    return tuple(_layer_kind(attn_order, d) for d in range(depth))


def _get(hps: Mapping, key: str):
    if key in hps:
        return hps[key]
    return REFERENCE_DEFAULTS[key]


def _refuse_unsupported(hps: Mapping) -> None:
    for key in ("copy_input", "pos_init", "prime_pos_init"):
        if _get(hps, key):
            raise ValueError(f"hps[{key!r}] = True is not supported by this engine")
    if hps.get("spread") not in (None, 0):
        raise ValueError("hps['spread'] (summary attention) is not supported by this engine")


def hop_lengths(vqvae_hps: Mapping) -> list[int]:
    """Samples per code at each VQ-VAE level (8, 32, 128 officially)."""
    hops, total = [], 1
    for stride, down in zip(_get(vqvae_hps, "strides_t"), _get(vqvae_hps, "downs_t"), strict=True):
        total *= int(stride) ** int(down)
        hops.append(total)
    return hops


def prior_config(hps: Mapping, vqvae_hps: Mapping) -> PriorConfig:
    _refuse_unsupported(hps)
    levels = int(_get(vqvae_hps, "levels"))
    level = int(_get(hps, "level"))
    if not 0 <= level < levels:
        raise ValueError(f"prior level {level} does not exist in a {levels}-level VQ-VAE")
    downs_t = [int(v) for v in _get(vqvae_hps, "downs_t")]
    strides_t = [int(v) for v in _get(vqvae_hps, "strides_t")]
    hops = hop_lengths(vqvae_hps)
    l_bins = int(_get(vqvae_hps, "l_bins"))
    n_ctx = int(_get(hps, "n_ctx"))
    width = int(_get(hps, "prior_width"))
    is_top = level == levels - 1

    single_enc_dec = bool(_get(hps, "single_enc_dec"))
    use_tokens = bool(_get(hps, "use_tokens"))
    n_tokens = int(_get(hps, "n_tokens"))
    n_vocab = int(_get(hps, "n_vocab"))
    separate_lyrics = (not single_enc_dec) and use_tokens and n_tokens > 0

    lyrics = None
    if separate_lyrics:
        lyrics = LyricsConfig(
            vocab=n_vocab,
            transformer=TransformerConfig(
                width=int(_get(hps, "prime_width")),
                depth=int(_get(hps, "prime_depth")),
                heads=int(_get(hps, "prime_heads")),
                n_ctx=n_tokens,
                attn_funcs=layer_kinds(int(_get(hps, "prime_attn_order")), int(_get(hps, "prime_depth"))),
                blocks=_get(hps, "prime_blocks"),
                m_attn=float(_get(hps, "prime_m_attn")),
                m_mlp=float(_get(hps, "prime_m_mlp")),
                res_scale=1.0 / int(_get(hps, "prime_depth")) if _get(hps, "prime_res_scale") else 1.0,
            ),
        )

    depth = int(_get(hps, "prior_depth"))
    stream_len = n_tokens + n_ctx if single_enc_dec else n_ctx
    transformer = TransformerConfig(
        width=width,
        depth=depth,
        heads=int(_get(hps, "heads")),
        n_ctx=stream_len,
        attn_funcs=layer_kinds(int(_get(hps, "attn_order")), depth),
        blocks=_get(hps, "blocks"),
        m_attn=float(_get(hps, "m_attn")),
        m_mlp=float(_get(hps, "m_mlp")),
        res_scale=1.0 / depth if _get(hps, "res_scale") else 1.0,
        encoder_len=n_tokens if separate_lyrics else 0,
        prime_len=n_tokens if single_enc_dec else 0,
    )
    check_transformer(transformer, "prior")
    if lyrics is not None:
        check_transformer(lyrics.transformer, "lyric encoder")

    labels = None
    if _get(hps, "labels"):
        y_bins = _get(hps, "y_bins")
        if not isinstance(y_bins, list | tuple) or len(y_bins) != 2:
            raise ValueError(f"hps['y_bins'] must be (n_genres, n_artists), got {y_bins!r}")
        min_d, max_d = _get(hps, "min_duration"), _get(hps, "max_duration")
        if is_top and (min_d is None or max_d is None):
            raise ValueError("a top-level prior needs min_duration and max_duration for its timing signal")
        beat_bins = int(hps.get("beat_bins", 0)) if is_top else 0
        labels = LabelEmbeddingConfig(
            n_genres=int(y_bins[0]),
            n_artists=int(y_bins[1]),
            max_bow_genre_size=int(_get(hps, "max_bow_genre_size")),
            include_timing=is_top,
            t_bins=int(_get(hps, "t_bins")),
            n_time=n_ctx,
            # The reference's label conditioner reads sr from the prior's own dict; both are 44100
            # in every official and fixture setting.
            sr=float(hps.get("sr", _get(vqvae_hps, "sr"))),
            min_duration=None if min_d is None else float(min_d),
            max_duration=None if max_d is None else float(max_d),
            beat_bins=beat_bins,
            bar_beats=int(hps.get("bar_beats", 0)) if beat_bins else 0,
        )
        if labels.beat_clock and labels.bar_beats < 1:
            raise ValueError("a beat clock needs bar_beats >= 1 (the most beats per bar it knows)")

    conditioner = None
    cond_downsample = None
    if not is_top:
        up = level + 1
        cond_downsample = strides_t[up] ** downs_t[up]
        cycle = _get(hps, "cond_dilation_cycle")
        conditioner = ConditionerConfig(
            bins=l_bins,
            width=width,
            cond_width=int(_get(hps, "cond_width")),
            depth=int(_get(hps, "cond_depth")),
            m_conv=float(_get(hps, "cond_m_conv")),
            dilation_growth_rate=int(_get(hps, "cond_dilation_growth_rate")),
            dilation_cycle=None if cycle is None else int(cycle),
            res_scale=bool(_get(hps, "cond_res_scale")),
            checkpointed_names=int(_get(hps, "cond_c_res")) == 1,
            down_t=downs_t[up],
            stride_t=strides_t[up],
            n_in=n_ctx // cond_downsample,
        )

    merged = bool(_get(hps, "merged_decoder"))
    align_layer, align_head = _get(hps, "alignment_layer"), _get(hps, "alignment_head")
    return PriorConfig(
        level=level,
        levels=levels,
        l_bins=l_bins,
        n_ctx=n_ctx,
        width=width,
        transformer=transformer,
        labels=labels,
        conditioner=conditioner,
        lyrics=lyrics,
        single_enc_dec=single_enc_dec,
        n_tokens=n_tokens,
        n_vocab=n_vocab,
        vocab_shift=n_vocab if single_enc_dec else 0,
        bins=l_bins + n_vocab if single_enc_dec else l_bins,
        add_cond_after_transformer=not merged,
        tied_x_out=not merged,
        fp16_params=bool(_get(hps, "fp16_params")),
        prime_loss_fraction=float(_get(hps, "prime_loss_fraction")),
        raw_to_tokens=hops[level],
        cond_downsample=cond_downsample,
        alignment_layer=None if align_layer is None else int(align_layer),
        alignment_head=None if align_head is None else int(align_head),
    )


def check_transformer(cfg: TransformerConfig, what: str) -> None:
    if cfg.n_state % cfg.heads:
        raise ValueError(f"{what}: n_state {cfg.n_state} is not divisible by {cfg.heads} heads")
    if cfg.blocks and cfg.n_ctx % cfg.blocks:
        raise ValueError(f"{what}: {cfg.n_ctx} positions cannot be split into {cfg.blocks} blocks")
    needs_blocks = {BLOCK, COLUMN, PREV_BLOCK} & set(cfg.attn_funcs)
    if needs_blocks and not cfg.blocks:
        raise ValueError(f"{what}: block-factorised attention needs hps 'blocks'")
    if ENC_DEC in cfg.attn_funcs and not cfg.encoder_len:
        raise ValueError(f"{what}: encoder-decoder layers need lyric tokens (n_tokens > 0, use_tokens)")
    if PRIME in cfg.attn_funcs and not cfg.prime_len:
        raise ValueError(f"{what}: prime-attention layers need single_enc_dec with n_tokens > 0")


def build_prior(config: PriorConfig, device: torch.device | str | None = None):
    """A prior module for `config` (random weights; use the loader for checkpoints).

    Build on device='meta' to get shapes of official-size models without allocating them.
    """
    from engine.prior.model import JukeboxPrior

    with torch.device(device or "cpu"):
        return JukeboxPrior(config)
