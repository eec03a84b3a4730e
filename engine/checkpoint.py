"""The project's own model format: `<name>.safetensors` weights beside `<name>.json` settings.

Loading never unpickles anything: safetensors holds raw tensors and the JSON holds the model kind, its
frozen config and a format version. Tensors that share storage (tied embeddings) are stored once and the
JSON lists the aliases. Both files are written to temporary names and moved into place, so an
interrupted save never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import CheckpointError
from engine.official.safe_load import check_state_dict

FORMAT_NAME = "cocompose-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelKind:
    """How to rebuild one kind of model from the config dict stored in its JSON."""

    name: str
    build: Callable[[dict], nn.Module]
    config_dict: Callable[[nn.Module], dict]


_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> None:
    _KINDS[kind.name] = kind


def _kinds() -> dict[str, ModelKind]:
    """The registry, with the engine's own kinds added on first use (imported late: they pull in models)."""
    if "vqvae" not in _KINDS:
        from engine.prior.builders import build_prior
        from engine.prior.config import config_from_dict, config_to_dict
        from engine.vqvae import VQVAE, VQVAEConfig

        register_kind(
            ModelKind("vqvae", lambda c: VQVAE(VQVAEConfig.from_dict(c)), lambda m: m.config.to_dict())
        )
        register_kind(
            ModelKind("prior", lambda c: build_prior(config_from_dict(c)), lambda m: config_to_dict(m.config))
        )
    return _KINDS


def paths_for(path: str | Path) -> tuple[Path, Path]:
    """(weights, settings) paths for a model given either file or the common stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


# A temporary file untouched for this long belongs to a write that was killed (a live one grows steadily).
STALE_AFTER_S = 600


def _remove_stale_temporaries(target: Path) -> None:
    now = time.time()
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_AFTER_S:
                leftover.unlink()


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `target`, then move it into place (never half-written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; models are ordinary files
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _split_aliases(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Keep one key per shared storage; map every other key to the one kept."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for key, tensor in state.items():
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if tensor.numel() and identity in seen:
            aliases[key] = seen[identity]
        else:
            seen[identity] = key
            kept[key] = tensor.detach().contiguous()
    return kept, aliases


def save_model(
    path: str | Path,
    model: nn.Module,
    kind: str,
    extra: dict | None = None,
    dtypes: dict[str, torch.dtype] | None = None,
) -> tuple[Path, Path]:
    """Write `model` in the project's format. `dtypes` keeps chosen tensors in another dtype (e.g. fp16)."""
    kinds = _kinds()
    if kind not in kinds:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(sorted(kinds))}")
    weights_path, settings_path = paths_for(path)
    kept, aliases = _split_aliases(model.state_dict())
    if dtypes:
        kept = {k: v.to(dtypes[k]) if k in dtypes else v for k, v in kept.items()}
    settings = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": kinds[kind].config_dict(model),
        "aliases": aliases,
        **(extra or {}),
    }
    atomic_write(weights_path, lambda p: save_file(kept, str(p), metadata={"format": FORMAT_NAME}))
    atomic_write(settings_path, lambda p: p.write_text(json.dumps(settings, indent=2, sort_keys=True)))
    return weights_path, settings_path


def read_settings(path: str | Path) -> dict:
    _, settings_path = paths_for(path)
    if not settings_path.exists():
        raise CheckpointError(f"model settings not found: {settings_path}")
    try:
        settings = json.loads(settings_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{settings_path.name} is not valid JSON ({exc})") from None
    if not isinstance(settings, dict) or settings.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{settings_path.name} is not a Cocompose model description")
    version = settings.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{settings_path.name} uses model format version {version}, newer than this Cocompose "
            f"understands ({FORMAT_VERSION}); update Cocompose to load it"
        )
    return settings


def load_model(path: str | Path, kind: str | None = None, device=None) -> nn.Module:
    """Rebuild a model saved by `save_model`, in eval mode with float32 compute weights."""
    kinds = _kinds()
    weights_path, settings_path = paths_for(path)
    settings = read_settings(path)
    found = settings.get("kind")
    if kind is not None and found != kind:
        raise CheckpointError(f"{settings_path.name} holds a {found!r} model, not a {kind!r}")
    if found not in kinds:
        raise CheckpointError(f"{settings_path.name}: unknown model kind {found!r}")
    try:
        model = kinds[found].build(settings["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{settings_path.name}: invalid model config ({exc})") from None
    if not weights_path.exists():
        raise CheckpointError(f"model weights not found: {weights_path}")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path.name} is damaged or truncated ({exc})") from None
    for alias, source in settings.get("aliases", {}).items():
        if source not in tensors:
            raise CheckpointError(f"{weights_path.name}: alias {alias!r} points at missing {source!r}")
        tensors[alias] = tensors[source]
    expected = model.state_dict()
    check_state_dict(tensors, expected, what=found, source=weights_path.name)
    # Weights stored in float16 (as the official 5B priors are) are computed with in float32.
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)
    model.eval()
    if device is not None:
        model.to(device)
    return model
