"""A run folder's checkpoints: everything needed to resume exactly, with no pickle anywhere.

    RUN_DIR/run.json                      what the run trains (kind, configs, data, vocabulary)
    RUN_DIR/model.{safetensors,json}      latest weights in the project's model format (for the app)
    RUN_DIR/checkpoints/step_NNNNNNNN/    model + state.safetensors (optimizer moments, RNG bytes, and
                                          the weights of what trains beside the model: a critic)
                                          + state.json (step, optimizer hyper-parameters, RNG scalars)
    RUN_DIR/latest.json                   which checkpoint is the newest complete one

A checkpoint folder is written under a temporary name and renamed when complete, and latest.json is
replaced atomically afterwards, so an interrupted save leaves the previous checkpoint in charge. The
data order needs no state: the crops of a step are a function of (seed, step).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine import checkpoint
from engine.errors import CheckpointError

KEEP_CHECKPOINTS = 2
COMPANION_PREFIX = "companion."


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(keys.astype(np.int64))
    version, words, gauss_next = random.getstate()
    scalars = {
        "numpy": {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "words": list(words), "gauss_next": gauss_next},
    }
    return tensors, scalars


def _set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = scalars["numpy"]
    keys = tensors["rng.numpy.keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached"]))
    p = scalars["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss_next"]))


def _optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, per_param in state["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})


def _companion_tensors(companions: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {
        f"{COMPANION_PREFIX}{name}.{key}": value.detach().cpu().contiguous()
        for name, module in companions.items()
        for key, value in module.state_dict().items()
    }


def _load_companions(companions: dict[str, nn.Module], tensors: dict[str, torch.Tensor], folder) -> None:
    for name, module in companions.items():
        prefix = f"{COMPANION_PREFIX}{name}."
        state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        if not state:
            raise CheckpointError(f"cannot resume from {folder}: it holds no {name} weights")
        module.load_state_dict(state)


def save(
    run_dir: Path,
    step: int,
    model: nn.Module,
    kind: str,
    optimizer: torch.optim.Optimizer,
    extra: dict,
    companions: dict[str, nn.Module] | None = None,
) -> Path:
    """Write checkpoint `step` and make it the latest; returns its folder. `companions` (a critic) are
    trained beside the model: their weights go with the optimizer state, not into the model."""
    folder = run_dir / "checkpoints" / f"step_{step:08d}"
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    checkpoint.save_model(partial / "model", model, kind, extra={**extra, "step": step})
    opt_tensors, opt_meta = _optimizer_state(optimizer)
    rng_tensors, rng_scalars = _rng_state()
    companion_tensors = _companion_tensors(companions or {})
    save_file({**opt_tensors, **rng_tensors, **companion_tensors}, str(partial / "state.safetensors"))
    write_json(partial / "state.json", {"step": step, "optimizer": opt_meta, "rng": rng_scalars})
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    write_json(run_dir / "latest.json", {"step": step, "checkpoint": str(folder.relative_to(run_dir))})
    checkpoint.save_model(run_dir / "model", model, kind, extra={**extra, "step": step})
    for old in sorted((run_dir / "checkpoints").glob("step_*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def latest(run_dir: Path) -> Path | None:
    pointer = run_dir / "latest.json"
    if not pointer.is_file():
        return None
    return run_dir / json.loads(pointer.read_text())["checkpoint"]


def restore(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    companions: dict[str, nn.Module] | None = None,
) -> int:
    """Load a checkpoint into `model`, `companions` and `optimizer`, set every RNG, return its step."""
    try:
        saved = checkpoint.load_model(folder / "model")
        tensors = load_file(str(folder / "state.safetensors"))
        meta = json.loads((folder / "state.json").read_text())
    except (OSError, json.JSONDecodeError, CheckpointError) as exc:
        raise CheckpointError(f"cannot resume from {folder}: {exc}") from None
    model.load_state_dict(saved.state_dict())
    _load_companions(companions or {}, tensors, folder)
    _load_optimizer(optimizer, tensors, meta["optimizer"])
    _set_rng_state(tensors, meta["rng"])
    return int(meta["step"])
