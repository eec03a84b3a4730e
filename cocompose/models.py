"""Model names: what a `--model` value means, and where installed models live.

A `--model` value is one of three things, tried in this order:

* ``default``: the embedded default model in the repository's ``assets/default-model`` (built by
  ``cocompose train-default --install``);
* a path to an existing folder (anything with a path separator, ``~``, or a folder that exists), used
  as it is;
* the name of an installed model: a folder under `models_home()` (official Jukebox models downloaded and
  converted there, or any model folder copied in by hand).

Nothing here loads a model; `resolve_model` only finds the folder, so bad values fail in milliseconds.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

DEFAULT_MODEL = "default"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default-model"


def model_reference(folder: Path, top: str) -> str:
    """What a project records to find its model again: the folder and the top prior's name."""
    return f"{folder.resolve()}#{top}"


def models_home() -> Path:
    """The folder that holds installed models, one sub-folder per name.

    ``$COCOMPOSE_HOME/models`` when COCOMPOSE_HOME is set (the root of Cocompose's own data), else
    ``$XDG_DATA_HOME/cocompose/models``, else ``~/.local/share/cocompose/models``. It may not exist yet:
    whoever installs the first model creates it.
    """
    home = os.environ.get("COCOMPOSE_HOME")
    if home:
        return Path(home).expanduser() / "models"
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data).expanduser() / "cocompose" / "models"


def installed_models() -> list[str]:
    """Names of the model folders under `models_home()`, sorted (hidden and partial folders left out)."""
    home = models_home()
    if not home.is_dir():
        return []
    return sorted(p.name for p in home.iterdir() if p.is_dir() and not p.name.startswith("."))


def _looks_like_path(value: str) -> bool:
    return os.sep in value or (os.altsep is not None and os.altsep in value) or value.startswith(("~", "."))


def resolve_model(value: str | os.PathLike) -> Path:
    """The model folder a `--model` value names; ValueError saying what to do when there is none."""
    text = str(value)
    if not text.strip():
        raise ValueError("--model needs a value: 'default', a model folder, or an installed model's name")
    if text == DEFAULT_MODEL:
        if not (DEFAULT_MODEL_DIR / "bundle.json").is_file():
            raise ValueError(
                f"the default model is not built yet (nothing in {DEFAULT_MODEL_DIR}); build it with "
                "`cocompose train-default --install`, or pass --model with a model folder"
            )
        return DEFAULT_MODEL_DIR
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(text) or path.exists():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ValueError(f"the model folder {text!r} {what}")
    installed = models_home() / text
    if installed.is_dir():
        return installed
    names = installed_models()
    near = difflib.get_close_matches(text, names, n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    have = f"installed: {', '.join(names)}" if names else "none installed"
    raise ValueError(
        f"unknown model {text!r}: not a folder, and not a model in {models_home()} ({have}){hint}. "
        "Pass 'default', a model folder, or the name of a model downloaded with "
        "`cocompose download-jukebox`"
    )
