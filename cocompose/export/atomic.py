"""All-or-nothing file writes: build the file under a temporary name beside the target, make it durable,
then rename it over the target in one step.

os.replace is atomic within one file system, which is why the temporary file lives in the target's own
folder and not in /tmp. Until the rename, an existing file at the target is never opened.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from pathlib import Path

from cocompose.export.errors import ExportError


def check_folder(target: Path) -> None:
    """Refuse early, by name, a target whose folder is missing, is not a folder, or cannot be written."""
    folder = target.parent
    if not folder.exists():
        raise ExportError(f"the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ExportError(f"{str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"the folder {str(folder)!r} is not writable")
    if target.is_dir():
        raise ExportError(f"{str(target)!r} is a folder, not a file name")


# A temporary file untouched for this long belongs to a write that was killed (a live one grows steadily).
STALE_AFTER_S = 600


def temporary_beside(target: Path) -> Path:
    """A new, empty, uniquely named file in the target's folder; hidden, and named after the target.

    Leftovers of earlier writes of the same target that were killed (SIGKILL, power cut) are removed first.
    The file gets the permissions of an ordinary new file (mkstemp's are owner-only), since it becomes one.
    """
    remove_stale_temporaries(target, ".partial")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise ExportError(f"cannot create a file in {str(target.parent)!r}: {exc.strerror or exc}") from exc
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(name, 0o666 & ~umask)
    return Path(name)


def remove_stale_temporaries(target: Path, suffix: str) -> None:
    """Delete `.{target name}.*{suffix}` files beside target not modified for STALE_AFTER_S seconds."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in target.parent.glob(f".{glob.escape(target.name)}.*{suffix}"):
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > STALE_AFTER_S:
                    leftover.unlink()


def make_durable(path: Path) -> None:
    """Flush `path`'s data to the disk, so a crash right after the rename cannot leave an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(temporary: Path, target: Path) -> None:
    """Rename `temporary` over `target` and make the rename itself durable (fsync of the folder)."""
    os.replace(temporary, target)
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the rename still holds
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def discard(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
