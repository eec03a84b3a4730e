"""Which model folder the app opens, and what it says when there is none: the app's side of
cocompose.models (a name or a folder, or the embedded default model), with a message that tells a
musician how to get a model."""

from __future__ import annotations

from pathlib import Path

from cocompose.models import DEFAULT_MODEL_DIR, resolve_model

NO_MODEL_HELP = (
    "No model is installed yet, so the app cannot sample music (projects still open, play and export).\n"
    "Get the default model with:\n"
    "    cocompose train-default --install\n"
    "(see docs/TRAINING.md), or choose a model folder with Model > Open Model Folder…"
)


class ModelMissing(ValueError):
    """No model where one was asked for; the message says how to get one."""


def resolve_model_folder(name_or_folder: str | Path | None, default: Path = DEFAULT_MODEL_DIR) -> Path:
    """A model folder from a folder path or a model name (through cocompose.models);
    None means the embedded default model, looked for in `default`."""
    if name_or_folder is None:
        if (default / "bundle.json").is_file():
            return default
        raise ModelMissing(NO_MODEL_HELP)
    path = Path(name_or_folder).expanduser()
    if path.is_dir():
        return path
    try:
        return resolve_model(str(name_or_folder))
    except ValueError as exc:
        raise ModelMissing(f"{exc}\n\n{NO_MODEL_HELP}") from None
