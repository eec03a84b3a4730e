"""Opening a project file safely: every check that can refuse a file runs before SQLite may write to it.

The header checks read raw bytes (the SQLite header keeps user_version at offset 60 and application_id at
offset 68, big-endian), so a random, foreign or newer file is turned away without being touched; SQLite
itself would already change the header just by switching the journal mode.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

from cocompose.store.errors import ProjectError
from cocompose.store.schema import APPLICATION_ID, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
# How long to wait for a lock before saying the project is open elsewhere. Short: the only other holder
# can be another Cocompose process, and it holds the lock for as long as it has the project open.
BUSY_TIMEOUT_S = 0.25


def check_header(path: Path) -> None:
    """Refuse, without writing, a file that is missing, unreadable, damaged, foreign or too new."""
    try:
        with open(path, "rb") as f:
            header = f.read(HEADER_SIZE)
    except FileNotFoundError:
        raise ProjectError(f"There is no project at {path}.") from None
    except IsADirectoryError:
        raise ProjectError(f"{path} is a folder, not a project file.") from None
    except PermissionError:
        raise ProjectError(f"Cocompose is not allowed to read {path}.") from None
    if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        raise ProjectError(
            f"{path} is not a Cocompose project, or it is damaged beyond what Cocompose can read. "
            "The file was not changed."
        )
    (user_version,) = struct.unpack(">I", header[60:64])
    (application_id,) = struct.unpack(">I", header[68:72])
    if application_id != APPLICATION_ID:
        raise ProjectError(
            f"{path} is a database made by another program, not a Cocompose project. "
            "The file was not changed."
        )
    if user_version > SCHEMA_VERSION:
        raise ProjectError(
            f"{path} was saved by a newer Cocompose (project format {user_version}); this version reads "
            f"format {SCHEMA_VERSION} and older. Update Cocompose to open it. The file was not changed."
        )


def _read_only(path: Path) -> bool:
    # Mode bits as well as access(): an administrator may write anywhere, but a file or folder marked
    # read-only was marked so on purpose, and we should not be the program that ignores it.
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222


def check_writable(path: Path) -> None:
    """The file and its folder must be writable: WAL mode writes a `-wal` file next to the project."""
    folder = path.parent
    if not folder.is_dir():
        raise ProjectError(f"The folder {folder} does not exist.")
    if _read_only(folder):
        raise ProjectError(
            f"The folder {folder} is read-only, so Cocompose cannot save changes to {path.name} there. "
            "Copy the project to a folder you can write to."
        )
    if path.exists() and _read_only(path):
        raise ProjectError(
            f"{path} is read-only, so Cocompose cannot save changes to it. "
            "Make it writable, or copy it somewhere else."
        )


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection that holds the file exclusively, with WAL, full fsync and foreign keys on."""
    mode = "rwc" if create else "rw"
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves: one edit, one transaction
            timeout=BUSY_TIMEOUT_S,
            check_same_thread=False,  # the app serialises access; see Project's docstring
        )
    except sqlite3.Error as exc:
        raise ProjectError(f"Cocompose cannot open {path}: {exc}.") from None
    try:
        # Exclusive locking: a second Cocompose opening the same file gets a clear "already open" error
        # instead of two writers interleaving takes. It also keeps WAL's index in memory (no -shm file).
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN IMMEDIATE")  # takes the lock now, and recovers a crashed WAL if there is one
        conn.execute("COMMIT")
        journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if journal != "wal":
            raise ProjectError(f"Cocompose cannot keep a safe journal for {path} (SQLite chose {journal}).")
        conn.execute("PRAGMA synchronous = FULL")  # see docs/PROJECT-FORMAT.md for why and what it costs
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise describe_sqlite_error(exc, path) from None
    except ProjectError:
        conn.close()
        raise
    return conn


def describe_sqlite_error(exc: sqlite3.Error, path: Path) -> ProjectError:
    """Turn SQLite's terse error into a sentence a musician can act on."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in str(exc):
        return ProjectError(
            f"{path.name} is open in another Cocompose window (or another program is using it). "
            "Close it there first."
        )
    if name.startswith("SQLITE_FULL"):
        return ProjectError(f"The disk holding {path.name} is full: the last change was not saved.")
    if name.startswith("SQLITE_READONLY"):
        return ProjectError(f"{path} is read-only, so Cocompose cannot save changes to it.")
    structural = not isinstance(
        exc, sqlite3.OperationalError | sqlite3.IntegrityError | sqlite3.ProgrammingError
    )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or (
        isinstance(exc, sqlite3.DatabaseError) and structural
    ):
        return ProjectError(
            f"{path} is damaged ({exc}). Cocompose did not change it; open a backup or a copy."
        )
    return ProjectError(f"Cocompose could not read or save {path.name}: {exc}.")
