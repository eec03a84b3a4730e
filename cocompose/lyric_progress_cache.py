"""Where the song up to a take sings in its lyrics, remembered per path so a repaint asks for free.

The app asks again every time the lyrics panel repaints or the playhead moves to another take; the
alignment is a pass of the top prior over the whole path, so each answer is kept under what it depends
on: the model, the path's codes and the labels in force over them. Qt-free; runs on the caller's thread.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from cocompose.store import Project, ProjectError

CACHE_SIZE = 32  # paths whose progress is kept (a window repaints and asks again often)


class LyricProgressCache:
    def __init__(self) -> None:
        self._found: dict[tuple, Any] = {}  # (model hash, codes digest, specs) -> LyricProgress

    def clear(self) -> None:
        """Forget every answer (a new model sings differently)."""
        self._found.clear()

    def progress(self, engine: Any, project: Project | None, lock: threading.RLock, node_id: int) -> Any:
        """-> engine.api.LyricProgress of the path to `node_id`, or None when the model sings no lyrics.
        The tree is read under `lock`; the alignment runs outside it."""
        from cocompose.service.runners import label_spec
        from cocompose.service.upsampling import conditioning_changes

        if project is None:
            raise ProjectError("Open or create a song first.")
        if not engine.sings_lyrics:
            return None
        with lock:
            tree = project.tree
            if node_id not in tree:
                raise ProjectError(f"Take {node_id} is not in this song (it may have been deleted).")
            codes = tree.path_codes(node_id).to_numpy()
            changes = conditioning_changes(tree, node_id, 0, len(codes))
            changes = changes or [(0, tree.conditioning_at(node_id))]
            planned = project.song.planned_seconds
        # The song length the labels are built with, as for upsampling the path.
        seconds = max(planned, len(codes) / engine.codes_per_second)
        specs = tuple((at, label_spec(c, seconds)) for at, c in changes)
        key = (engine.model_hash, hashlib.sha256(codes.tobytes()).hexdigest(), specs)
        found = self._found.get(key)
        if found is None:
            found = engine.lyric_progress(codes, specs)
            while len(self._found) >= CACHE_SIZE:
                self._found.pop(next(iter(self._found)))
            self._found[key] = found
        return found
