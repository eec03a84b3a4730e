"""What the app remembers between runs: recent projects, and which project was open when it last stopped.

One small JSON file in the user's config folder, always rewritten whole and atomically. The app marks a
project as open when it opens it and clears the mark when it closes cleanly, so a mark found at start means
the last run died with that project open: the app offers to reopen it. A missing or unreadable file is
never an error (the app starts with nothing remembered); the file is only a convenience.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

CONFIG_DIR_ENV = "COCOMPOSE_CONFIG_DIR"  # tests and portable installs point this elsewhere
STATE_FILE = "app-state.json"
MAX_RECENT = 10
FORMAT = "cocompose-app-state"


def config_dir() -> Path:
    """$COCOMPOSE_CONFIG_DIR, else the platform's per-user config folder plus "cocompose"."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV])
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "cocompose"


@dataclass(frozen=True)
class AppState:
    recent: tuple[str, ...] = ()  # newest first, absolute paths
    open_project: str | None = None  # set while a project is open; still set at start = the app died
    model: str | None = None  # the model folder (or name) the musician chose last

    def with_recent(self, path: str | os.PathLike) -> AppState:
        text = str(Path(path).resolve())
        recent = (text, *(p for p in self.recent if p != text))[:MAX_RECENT]
        return replace(self, recent=recent)

    def without_recent(self, path: str | os.PathLike) -> AppState:
        text = str(Path(path).resolve())
        return replace(self, recent=tuple(p for p in self.recent if p != text))

    def existing_recent(self) -> tuple[str, ...]:
        return tuple(p for p in self.recent if Path(p).is_file())


def load_state(folder: Path | None = None) -> AppState:
    """The remembered state; a missing, damaged or foreign file gives the empty state."""
    path = (folder or config_dir()) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return AppState()
        recent = tuple(str(p) for p in data.get("recent", []) if isinstance(p, str))[:MAX_RECENT]
        open_project = data.get("open_project")
        model = data.get("model")
        return AppState(
            recent=recent,
            open_project=open_project if isinstance(open_project, str) else None,
            model=model if isinstance(model, str) else None,
        )
    except (OSError, ValueError):
        return AppState()


def save_state(state: AppState, folder: Path | None = None) -> None:
    """Write the state atomically (a crash mid-write leaves the old file). Raises OSError if impossible."""
    data = {"format": FORMAT, "version": 1, "recent": list(state.recent),
            "open_project": state.open_project, "model": state.model}  # fmt: skip
    target = (folder or config_dir()) / STATE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not engine.checkpoint.atomic_write: that module loads torch, and this runs before the window shows.
    fd, name = tempfile.mkstemp(prefix=f".{STATE_FILE}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)
