"""Load an official-format Jukebox prior checkpoint (`prior_level_{0,1,2}.pth.tar`) into an engine prior.

The file is read with the safe loader (weights only). Before anything is copied we check that the
file is the kind of model asked for (a VQ-VAE or an upsampler handed in as a top prior is named as
such), then every key and shape against the model built from the hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from engine.errors import CheckpointError
from engine.official.safe_load import check_state_dict, read_checkpoint, read_state_dict
from engine.prior.builders import prior_config
from engine.prior.config import PriorConfig
from engine.prior.model import JukeboxPrior
from engine.prior.presets import PRIOR_KINDS, official_hps

_FAMILY_WORDS = {
    "vqvae": "a VQ-VAE",
    "upsampler": "an upsampler prior (conditioned on upper-level codes)",
    "top": "a top-level prior without lyrics (5b-like)",
    "top_lyrics_encoder": "a top-level lyrics prior with a separate lyric encoder (5b_lyrics-like)",
    "top_single_enc_dec": "a top-level lyrics prior with one joint lyric+music stream (1b_lyrics-like)",
    "unknown": "not a Jukebox prior",
}


def _family_of_state(state: Mapping[str, torch.Tensor], l_bins: int | None) -> str:
    keys = state.keys()
    if any(k.startswith(("encoders.", "decoders.", "bottleneck.")) for k in keys):
        return "vqvae"
    if "prior.x_emb.weight" not in state:
        return "unknown"
    if any(k.startswith("conditioner_blocks.") for k in keys):
        return "upsampler"
    if any(k.startswith("prime_prior.") for k in keys):
        return "top_lyrics_encoder"
    if any(".c_enc_kv." in k for k in keys):
        return "top_lyrics_encoder"
    if l_bins is not None and state["prior.x_emb.weight"].shape[0] > l_bins:
        return "top_single_enc_dec"
    return "top"


def _family_of_config(cfg: PriorConfig) -> str:
    if not cfg.is_top:
        return "upsampler"
    if cfg.lyrics is not None:
        return "top_lyrics_encoder"
    if cfg.single_enc_dec:
        return "top_single_enc_dec"
    return "top"


def _check_kind(path: Path, kind: str, cfg: PriorConfig, state, file_hps) -> None:
    expected, found = _family_of_config(cfg), _family_of_state(state, cfg.l_bins)
    if expected != found:
        raise CheckpointError(
            f"{path.name} cannot be loaded as {kind}: expected {_FAMILY_WORDS[expected]}, "
            f"but the file holds {_FAMILY_WORDS[found]}"
        )
    # The two upsamplers have identical shapes; a file that records its level can still tell them apart.
    if isinstance(file_hps, Mapping) and "level" in file_hps:
        try:
            file_level = int(file_hps["level"])
        except (TypeError, ValueError):
            return
        if file_level != cfg.level:
            raise CheckpointError(
                f"{path.name} cannot be loaded as {kind}: it is a level-{file_level} prior, "
                f"expected level {cfg.level}"
            )


def _tied_ok(path: Path, state) -> None:
    emb, out = state.get("prior.x_emb.weight"), state.get("prior.x_out.weight")
    if emb is not None and out is not None and not torch.equal(emb.float(), out.float()):
        raise CheckpointError(
            f"{path.name}: prior.x_out.weight must equal prior.x_emb.weight (they are one tied table "
            "in this model), but the file holds different values"
        )


def _read(path: Path) -> tuple[dict[str, torch.Tensor], object]:
    """The checkpoint's state_dict (`module.` stripped) and its recorded hps, from one safe read."""
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint.get("model"), Mapping):
        read_state_dict(path)  # raises the safe loader's error for a file without a state_dict
    state: dict[str, torch.Tensor] = {}
    for key, value in checkpoint["model"].items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path.name}: entry {key!r} of the state_dict is not a tensor")
        state[str(key).removeprefix("module.")] = value
    return state, checkpoint.get("hps")


def fp16_weight_names(model: JukeboxPrior) -> set[str]:
    """The weights an official file stores in float16: every Conv1D `w` when the prior has fp16_params."""
    return _conv1d_weight_names(model) if model.config.fp16_params else set()


def _conv1d_weight_names(model: JukeboxPrior) -> set[str]:
    from engine.prior.conv1d import Conv1D

    return {f"{name}.w" for name, module in model.named_modules() if isinstance(module, Conv1D)}


def load_prior(
    path: str | Path,
    kind: str,
    hps: Mapping | None = None,
    vqvae_hps: Mapping | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> JukeboxPrior:
    """Build the prior `kind` from reference-style hps and load `path` into it (eval mode).

    kind: upsampler_level_0, upsampler_level_1, prior_5b, prior_5b_lyrics or prior_1b_lyrics.
    hps / vqvae_hps: the prior's and the VQ-VAE's reference hps dicts; None means the official ones.
    Codebook size, levels and hop lengths come from vqvae_hps. Computes in float32 on the CPU by
    default; fp16 Conv1D weights in the file are up-cast (their values are already fp16-rounded).
    Raises CheckpointError for a damaged file, a file of another kind, or mismatching keys/shapes.
    """
    if kind not in PRIOR_KINDS:
        raise ValueError(f"unknown prior kind {kind!r}; expected one of {', '.join(PRIOR_KINDS)}")
    path = Path(path)
    if hps is None:
        hps = official_hps(kind)
    if vqvae_hps is None:
        vqvae_hps = official_hps("vqvae")
    cfg = prior_config(hps, vqvae_hps)
    state, file_hps = _read(path)
    _check_kind(path, kind, cfg, state, file_hps)

    # Shapes first, on the meta device: nothing official-sized is allocated for a file we reject.
    with torch.device("meta"):
        skeleton = JukeboxPrior(cfg)
    check_state_dict(state, skeleton.state_dict(), what=kind, source=path.name)
    if cfg.tied_x_out:
        _tied_ok(path, state)

    model = skeleton.to_empty(device=device or "cpu")
    if cfg.tied_x_out:
        model.prior.x_out.weight = model.prior.x_emb.weight  # to_empty made two tensors of the tie
    fp16_weights = fp16_weight_names(model)
    targets = dict(model.state_dict(keep_vars=True))
    with torch.no_grad():
        for key in list(state):
            value = state.pop(key)
            if key in fp16_weights and value.dtype != torch.float16:
                # The reference converts these to fp16 before restoring; do the same rounding.
                value = value.half()
            if not value.is_floating_point():
                raise CheckpointError(f"{path.name}: {key} holds {value.dtype}, expected floating point")
            targets[key].copy_(value)
    if dtype is not None and dtype != torch.float32:
        set_compute_dtype(model, dtype)
    return model.eval()


def set_compute_dtype(model: JukeboxPrior, dtype: torch.dtype) -> JukeboxPrior:
    """Run the transformer stacks in `dtype` (bf16/fp16 on a GPU); everything else stays float32."""
    model.prior.transformer.to(dtype=dtype)
    if getattr(model, "prime_prior", None) is not None:
        model.prime_prior.transformer.to(dtype=dtype)
    return model
