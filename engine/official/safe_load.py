"""Read official Jukebox `.pth.tar` files without letting them execute anything.

The official files are torch pickles (`{'hps', 'model', 'opt', 'step'}`). A pickle can name any Python
callable, so we only ever unpickle with `weights_only=True`, which refuses every global that is not on
torch's allow-list. The only extra globals we admit are numpy scalar and dtype reconstructors: an `hps`
dict written from numpy values needs them, and they can build nothing but numbers.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from engine.errors import CheckpointError


def _harmless_numpy_globals() -> list:
    """numpy's scalar/dtype reconstructors, under whichever module path this numpy uses."""
    found: list = [np.dtype]
    for module_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = __import__(module_name, fromlist=["scalar"])
        except ImportError:
            continue
        scalar = getattr(module, "scalar", None)
        if scalar is not None:
            found.append((scalar, f"{module_name}.scalar"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found.extend(
            getattr(dtypes, name)
            for name in dir(dtypes)
            if name.endswith("DType") and isinstance(getattr(dtypes, name), type)
        )
    return found


def read_checkpoint(path: str | Path) -> dict:
    """Unpickle a checkpoint file safely and return its top-level dict.

    Raises CheckpointError for a missing file, a damaged or truncated file, a file that is not a torch
    checkpoint, and a pickle that asks for any code-executing global (nothing of it runs).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint path is not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    try:
        with torch.serialization.safe_globals(_harmless_numpy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "Unsupported global" in message or "Weights only load failed" in message:
            refused = _refused_global(message)
            raise CheckpointError(
                f"refusing to load {path.name}: it asks to run code{refused} while loading. "
                "Official Jukebox checkpoints contain only tensors and settings; this file is unsafe "
                "or not a Jukebox checkpoint. Nothing from it was executed."
            ) from None
        raise CheckpointError(f"{path.name} is damaged or not a torch checkpoint ({message})") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError) as exc:
        raise CheckpointError(
            f"{path.name} is truncated, damaged or not a torch checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path.name} is not a Jukebox checkpoint: expected a dict with a 'model' entry, "
            f"found {type(obj).__name__}"
        )
    return obj


def _refused_global(message: str) -> str:
    for marker in ("Unsupported global: GLOBAL ", "GLOBAL "):
        if marker in message:
            name = message.split(marker, 1)[1].split()[0].rstrip(".,:")
            return f" ({name})"
    return ""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The `model` state_dict of an official checkpoint, with DDP's `module.` prefix removed."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("model")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{Path(path).name} is not a Jukebox checkpoint: it has no 'model' state_dict "
            f"(top-level keys: {sorted(map(str, checkpoint))[:8]})"
        )
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{Path(path).name}: entry {key!r} of the state_dict is not a tensor")
        cleaned[key.removeprefix("module.")] = value
    return cleaned


def check_state_dict(
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    *,
    what: str,
    source: str,
) -> None:
    """Strict key and shape check with a readable error, before anything is copied into a model."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(
            f"{source} is not a {what} checkpoint with these hyper-parameters: keys differ: "
            + "; ".join(detail)
        )
    wrong = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(tensor.shape)}"
        for key, tensor in expected.items()
        if tuple(state[key].shape) != tuple(tensor.shape)
    ]
    if wrong:
        raise CheckpointError(
            f"{source} does not match the {what} hyper-parameters: {len(wrong)} tensors have other shapes "
            f"({'; '.join(wrong[:3])})"
        )
