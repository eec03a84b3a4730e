"""Load the official Jukebox `vqvae.pth.tar` (or any file in its format) into the engine's VQ-VAE."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import CheckpointError
from engine.official.safe_load import check_state_dict, read_state_dict
from engine.prior.presets import official_hps
from engine.vqvae import VQVAE, VQVAEConfig

# The official VQ-VAE: its shape comes from the shared official presets; these are the training settings
# (loss weights, codebook EMA) of the reference's `vqvae` registry entry, which only training needs.
_OFFICIAL_TRAINING_HPS: dict = {
    "sample_length": 1048576,
    "l_mu": 0.99,
    "commit": 0.02,
    "spectral": 0.0,
    "multispectral": 1.0,
    "loss_fn": "lmix",
    "lmix_l1": 0.0,
    "lmix_l2": 1.0,
    "lmix_linf": 0.02,
    "linf_k": 2048,
    "revival_threshold": 1.0,
    "multispec_loss_n_fft": (2048, 1024, 512),
    "multispec_loss_hop_length": (240, 120, 50),
    "multispec_loss_window_size": (1200, 600, 240),
}
OFFICIAL_VQVAE_HPS: dict = {**official_hps("vqvae"), **_OFFICIAL_TRAINING_HPS}

# reference hps key -> VQVAEConfig field
_FIELD_FOR_KEY = {
    "sr": "sample_rate",
    "sample_length": "sample_length",
    "levels": "levels",
    "downs_t": "downs_t",
    "strides_t": "strides_t",
    "emb_width": "emb_width",
    "l_bins": "l_bins",
    "l_mu": "mu",
    "commit": "commit",
    "spectral": "spectral",
    "multispectral": "multispectral",
    "hvqvae_multipliers": "multipliers",
    "lmix_l1": "lmix_l1",
    "lmix_l2": "lmix_l2",
    "lmix_linf": "lmix_linf",
    "linf_k": "linf_k",
    "width": "width",
    "depth": "depth",
    "m_conv": "m_conv",
    "dilation_growth_rate": "dilation_growth_rate",
    "dilation_cycle": "dilation_cycle",
    "vqvae_reverse_decoder_dilation": "reverse_decoder_dilation",
    "revival_threshold": "revival_threshold",
    "multispec_loss_n_fft": "multispec_n_fft",
    "multispec_loss_hop_length": "multispec_hop_length",
    "multispec_loss_window_size": "multispec_window_size",
}


def vqvae_config_from_hps(hps: dict | None) -> VQVAEConfig:
    """Translate a reference-style hyper-parameter dict into a VQVAEConfig (None: the official one)."""
    merged = dict(OFFICIAL_VQVAE_HPS)
    if hps is not None:
        merged.update({k: v for k, v in hps.items() if k in _FIELD_FOR_KEY})
        if merged.get("loss_fn", "lmix") != "lmix":
            raise ValueError(
                f"only the reference's 'lmix' reconstruction loss is supported, got {hps['loss_fn']}"
            )
        levels = merged["levels"]
        if hps.get("hvqvae_multipliers") is None:
            merged["hvqvae_multipliers"] = (1,) * levels
    values = {}
    for key, field_name in _FIELD_FOR_KEY.items():
        value = merged[key]
        values[field_name] = tuple(value) if isinstance(value, list | tuple) else value
    return VQVAEConfig(**values)


def official_state_keys(model: VQVAE) -> dict[str, torch.Tensor]:
    """The subset of our state_dict that an official file holds: weights plus each codebook's `k`."""
    ema_only = ("k_sum", "k_elem", "initialized")
    return {k: v for k, v in model.state_dict().items() if not k.endswith(ema_only)}


def load_vqvae(
    path: str | Path,
    hps: dict | None = None,
    device: torch.device | str | None = None,
) -> VQVAE:
    """Load an official-format VQ-VAE checkpoint; returns the model in eval mode, float32.

    `hps` is a reference-style hyper-parameter dict (the reference's `hparams.py` keys); None means the
    official preset. Only tensors are read (see safe_load); nothing in the file can execute code.
    """
    try:
        config = vqvae_config_from_hps(hps)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"invalid VQ-VAE hyper-parameters: {exc}") from None
    state = read_state_dict(path)
    _reject_other_model_kinds(state, Path(path).name)
    model = VQVAE(config)
    expected = official_state_keys(model)
    check_state_dict(state, expected, what="Jukebox VQ-VAE", source=Path(path).name)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    for codebook in model.bottleneck.level_blocks:
        # Seed the EMA state so the model can be fine-tuned; it plays no part in encode/decode.
        codebook.restore_(config.sample_length / config.hop_lengths[0])
    model.eval()
    if device is not None:
        model.to(device)
    return model


def _reject_other_model_kinds(state: dict[str, torch.Tensor], name: str) -> None:
    if any(k.startswith(("prior.", "y_emb.", "conditioner_blocks.", "prime_prior.")) for k in state):
        raise CheckpointError(
            f"{name} is a Jukebox prior checkpoint, not a VQ-VAE: load it with engine.official.load_prior"
        )
    if not any(k.startswith("bottleneck.") for k in state):
        raise CheckpointError(f"{name} is not a Jukebox VQ-VAE checkpoint: it has no codebook (bottleneck.*)")
