"""Official Jukebox hyper-parameters, written as the reference writes them: override dicts on defaults.

`official_hps(name)` gives a reference-style dict (the keys the builders read), so
`load_prior(path, 'prior_5b')` can build the official models without the caller knowing any size.
Only the fields that shape or run a model are listed; training-only defaults are left out.
"""

from __future__ import annotations

# The reference DEFAULTS for every field our builders read.
REFERENCE_DEFAULTS: dict = {
    # audio / vq-vae
    "sr": 44100,
    "levels": 2,
    "downs_t": (1, 1),
    "strides_t": (2, 2),
    "emb_width": 64,
    "l_bins": 512,
    "hvqvae_multipliers": None,
    "width": 128,
    "depth": 3,
    "m_conv": 1.0,
    "dilation_growth_rate": 1,
    "dilation_cycle": None,
    "vqvae_reverse_decoder_dilation": True,
    # prior
    "level": 0,
    "labels": True,
    "labels_v3": False,
    "max_bow_genre_size": None,
    "y_bins": 0,
    "t_bins": 64,
    "min_duration": None,
    "max_duration": None,
    "n_tokens": 0,
    "n_vocab": 0,
    "use_tokens": False,
    "copy_input": False,
    "merged_decoder": False,
    "single_enc_dec": False,
    "alignment_layer": None,
    "alignment_head": None,
    "prime_loss_fraction": 0.1,
    "fp16_params": False,
    # prior transformer
    "n_ctx": 1024,
    "prior_depth": 3,
    "prior_width": 128,
    "heads": 1,
    "attn_order": 0,
    "blocks": None,
    "spread": None,
    "zero_out": False,
    "res_scale": False,
    "pos_init": False,
    "init_scale": 1.0,
    "m_attn": 0.25,
    "m_mlp": 1.0,
    # upsampler conditioner
    "cond_depth": 3,
    "cond_width": 128,
    "cond_m_conv": 1.0,
    "cond_zero_out": False,
    "cond_res_scale": False,
    "cond_dilation_growth_rate": 1,
    "cond_dilation_cycle": None,
    "cond_c_res": 0,
    # lyric encoder
    "prime_depth": 3,
    "prime_width": 128,
    "prime_heads": 1,
    "prime_attn_order": 0,
    "prime_blocks": None,
    "prime_spread": None,
    "prime_zero_out": False,
    "prime_res_scale": False,
    "prime_pos_init": False,
    "prime_init_scale": 1.0,
    "prime_m_attn": 0.25,
    "prime_m_mlp": 1.0,
}

_LABELS_V2 = {"y_bins": (120, 4111), "t_bins": 128, "max_bow_genre_size": 5, "n_vocab": 80}
_LABELS_V3 = {"y_bins": (604, 7898), "t_bins": 64, "max_bow_genre_size": 1, "n_vocab": 79}

_UPSAMPLER = {
    "n_ctx": 8192,
    "prior_width": 1920,
    "prior_depth": 72,
    "heads": 1,
    "attn_order": 2,
    "blocks": 128,
    "init_scale": 0.4,
    "cond_width": 1024,
    "cond_depth": 16,
    "cond_dilation_growth_rate": 3,
    "cond_dilation_cycle": 8,
    "cond_c_res": 1,
    "use_tokens": False,
    "prime_loss_fraction": 0.0,
    "fp16_params": False,
    **_LABELS_V2,
}

OFFICIAL_OVERRIDES: dict[str, dict] = {
    "vqvae": {
        "levels": 3,
        "downs_t": (3, 2, 2),
        "strides_t": (2, 2, 2),
        "emb_width": 64,
        "l_bins": 2048,
        "hvqvae_multipliers": (2, 1, 1),
        "width": 32,
        "depth": 4,
        "m_conv": 1.0,
        "dilation_growth_rate": 3,
    },
    "upsampler_level_0": {"level": 0, **_UPSAMPLER},
    "upsampler_level_1": {"level": 1, "cond_res_scale": True, **_UPSAMPLER},
    "prior_5b": {
        "level": 2,
        "n_ctx": 8192,
        "prior_width": 4800,
        "prior_depth": 72,
        "heads": 8,
        "attn_order": 2,
        "blocks": 128,
        "init_scale": 0.1,
        "min_duration": 60.0,
        "max_duration": 600.0,
        "use_tokens": False,
        "n_tokens": 0,
        "prime_loss_fraction": 0.0,
        "merged_decoder": True,
        "fp16_params": True,
        **_LABELS_V2,
    },
    "prior_5b_lyrics": {
        "level": 2,
        "n_ctx": 8192,
        "prior_width": 4800,
        "prior_depth": 79,
        "heads": 8,
        "attn_order": 10,
        "blocks": 128,
        "init_scale": 0.1,
        "prime_width": 1280,
        "prime_depth": 18,
        "prime_heads": 4,
        "prime_attn_order": 2,
        "prime_blocks": 32,
        "prime_init_scale": 0.7,
        "min_duration": 23.8,
        "max_duration": 600.0,
        "use_tokens": True,
        "n_tokens": 512,
        "prime_loss_fraction": 0.4,
        "merged_decoder": True,
        "fp16_params": True,
        "alignment_layer": 68,
        "alignment_head": 2,
        **_LABELS_V2,
    },
    "prior_1b_lyrics": {
        "level": 2,
        "n_ctx": 6144,
        "prior_width": 2048,
        "prior_depth": 72,
        "heads": 2,
        "attn_order": 12,
        "blocks": 64,
        "init_scale": 0.2,
        "labels_v3": True,
        "min_duration": 17.84,
        "max_duration": 600.0,
        "use_tokens": True,
        "n_tokens": 384,
        "prime_loss_fraction": 0.4,
        "single_enc_dec": True,
        "fp16_params": False,
        "alignment_layer": 63,
        "alignment_head": 0,
        **_LABELS_V3,
    },
}

PRIOR_KINDS = ("upsampler_level_0", "upsampler_level_1", "prior_5b", "prior_5b_lyrics", "prior_1b_lyrics")


def official_hps(name: str) -> dict:
    """The reference-style hps dict of an official model (`vqvae` or one of PRIOR_KINDS)."""
    if name not in OFFICIAL_OVERRIDES:
        raise ValueError(f"no official preset named {name!r}; known: {', '.join(OFFICIAL_OVERRIDES)}")
    return {**REFERENCE_DEFAULTS, **OFFICIAL_OVERRIDES[name]}
