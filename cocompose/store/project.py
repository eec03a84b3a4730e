"""A project: one SQLite file holding the song tree, its undo history, jobs and caches.

There is no save button: every edit is one transaction, committed (and fsynced) before the call returns,
and only then shown in `project.tree`. Killing the process at any moment loses nothing committed.

Threading: a Project is used from one thread at a time (the app funnels engine results to the main thread,
STYLE habit 14); sqlite3's own check is off only so that thread may be a worker's during tests.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from cocompose.history import History
from cocompose.song.codes import Codes
from cocompose.song.records import Conditioning, ModelInfo, Node, SongInfo
from cocompose.song.tree import SongTree
from cocompose.store.connection import check_header, check_writable, connect, describe_sqlite_error
from cocompose.store.edits import ProjectEdits
from cocompose.store.errors import ProjectError
from cocompose.store.migrations import migrate
from cocompose.store.rows import insert_node, load_live_nodes
from cocompose.store.schema import APPLICATION_ID
from cocompose.store.side_tables import ProjectSideTables

T = TypeVar("T")


class Project(ProjectEdits, ProjectSideTables):
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._history = History(conn)
        self.tree = SongTree()
        self.song = self._load_song()
        self._load_tree()

    # -- creating and opening ----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        conditioning: Conditioning,
        planned_seconds: float,
        model: ModelInfo | None = None,
        title: str = "",
        prime_codes: Codes | None = None,
        prime_audio: bytes | None = None,
        prime_audio_name: str = "",
    ) -> Project:
        """A new project whose root is empty, or holds a prime's codes (its audio is kept as a blob)."""
        path = Path(path)
        if path.exists():
            raise ProjectError(f"{path} already exists; choose another name or open it instead.")
        check_writable(path)
        # Build under a temporary name and rename at the end, so a crash mid-creation never leaves a
        # half-made file under the name the musician chose.
        draft = path.with_name(f".{path.name}.creating")
        for leftover in (draft, Path(f"{draft}-wal")):
            leftover.unlink(missing_ok=True)
        conn = connect(draft, create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            migrate(conn)
            now = time.time()
            blob_id = None
            if prime_audio is not None:
                blob_id = conn.execute(
                    "INSERT INTO blobs (kind, original_name, sha256, data) VALUES ('prime_audio', ?, ?, ?)",
                    (prime_audio_name, hashlib.sha256(prime_audio).hexdigest(), prime_audio),
                ).lastrowid
            model = model or ModelInfo()
            root = Node(
                id=1,
                parent_id=None,
                codes=prime_codes or Codes(),
                conditioning=conditioning,
                name="prime" if prime_codes else "start",
                created_at=now,
            )
            insert_node(conn, root, deleted_by=None)
            conn.execute(
                "INSERT INTO song VALUES (1, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?)",
                (
                    title or path.stem,
                    planned_seconds,
                    model.name,
                    model.hash,
                    model.sample_rate,
                    model.codes_per_second,
                    blob_id,
                    now,
                ),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise describe_sqlite_error(exc, path) from None
        conn.close()
        os.replace(draft, path)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Project:
        path = Path(path)
        check_header(path)
        check_writable(path)
        conn = connect(path, create=False)
        try:
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise ProjectError(f"{path} is not a Cocompose project. The file was not changed.")
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise ProjectError(
                    f"{path} is damaged ({problems[0]}). Cocompose did not change it; "
                    "open a backup or a copy."
                )
            conn.execute("BEGIN IMMEDIATE")
            migrate(conn)
            # Whatever was being sampled when the last session ended stays, marked as cut short.
            conn.execute("UPDATE nodes SET state = 'interrupted' WHERE state = 'in_progress'")
            # A paused job cannot go on either: it lived in the last session's worker (its takes are
            # interrupted just above; its saved upsampling windows are reused by the same request).
            conn.execute(
                "UPDATE jobs SET state = 'interrupted', updated_at = ? WHERE state IN ('running', 'paused')",
                (time.time(),),
            )
            conn.execute("COMMIT")
            return cls(path, conn)
        except sqlite3.Error as exc:
            conn.close()
            raise describe_sqlite_error(exc, path) from None
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the file; SQLite folds the WAL back in, leaving the project as one file."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def copy_to(self, path: str | os.PathLike) -> Path:
        """A consistent copy of the project as it is now, written under a temporary name then renamed."""
        path = Path(path)
        check_writable(path)
        draft = path.with_name(f".{path.name}.copying")
        draft.unlink(missing_ok=True)
        try:
            target = sqlite3.connect(draft)
            try:
                self._conn.backup(target)
                target.execute("PRAGMA journal_mode = WAL")
            finally:
                target.close()
            with open(draft, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(draft, path)
        except sqlite3.Error as exc:
            draft.unlink(missing_ok=True)
            raise describe_sqlite_error(exc, path) from None
        return path

    def save_as(self, path: str | os.PathLike) -> None:
        """Copy the project to `path` and keep working there; the old file stays as it was."""
        path = Path(path)
        if path.resolve() == self.path.resolve():
            return
        self.copy_to(path)
        reopened = Project.open(path)  # checks the copy like any other file before we rely on it
        self.close()
        # The copy holds the same tree, so `self.tree` (and the UI watching it) stays as it is.
        self.path, self._conn, self._history = reopened.path, reopened._conn, reopened._history

    # -- song-wide facts set after creation (engine service; not undo steps: they describe the file) --
    def set_model(self, model: ModelInfo) -> None:
        """Record the model the song is composed with (its name, hash, rate and top-level code rate)."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE song SET model_name = ?, model_hash = ?, sample_rate = ?, codes_per_second = ?",
                (model.name, model.hash, model.sample_rate, model.codes_per_second),
            )
        )
        self.song = self._load_song()

    def set_prime(
        self, codes: Codes, audio: bytes, audio_name: str = "", conditioning: Conditioning | None = None
    ) -> None:
        """Prime a song that has no takes yet: the root takes the prime's codes, the audio is kept, and
        `conditioning`, when given, becomes the root's in the same step (the riff's tempo)."""
        root = self.tree.root
        if self.tree.children(root.id) or len(root.codes):
            raise ProjectError("Only a song with no takes yet can be primed; start a new project instead.")

        def change(ed, history) -> None:
            blob_id = ed.conn.execute(
                "INSERT INTO blobs (kind, original_name, sha256, data) VALUES ('prime_audio', ?, ?, ?)",
                (audio_name, hashlib.sha256(audio).hexdigest(), audio),
            ).lastrowid
            ed.conn.execute("UPDATE song SET prime_audio_blob = ?", (blob_id,))
            ed.set_codes(root.id, codes)
            if conditioning is not None:
                ed.update(replace(ed.node(root.id), conditioning=conditioning))

        self._edit(change)
        self.song = self._load_song()

    # -- reading ---------------------------------------------------------------------------------------
    def _load_song(self) -> SongInfo:
        row = self._conn.execute(
            "SELECT title, planned_seconds, model_name, model_hash, sample_rate, codes_per_second, "
            "prime_audio_blob, created_at FROM song"
        ).fetchone()
        if row is None:
            raise ProjectError(f"{self.path} has no song in it; it is damaged. Cocompose did not change it.")
        model = ModelInfo(name=row[2], hash=row[3], sample_rate=row[4], codes_per_second=row[5])
        return SongInfo(
            title=row[0], planned_seconds=row[1], model=model, prime_audio_blob=row[6], created_at=row[7]
        )

    def _load_tree(self) -> None:
        for node in load_live_nodes(self._conn):  # parents first, so attaching one at a time is valid
            self.tree.attach([node])
        self.tree.set_current(self._conn.execute("SELECT current_id FROM song").fetchone()[0])

    def integrity_problems(self) -> list[str]:
        """SQLite's full integrity check plus foreign keys; [] when the file is sound."""
        problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check")]
        problems = [] if problems == ["ok"] else problems
        problems += [f"foreign key: {row}" for row in self._conn.execute("PRAGMA foreign_key_check")]
        return problems

    # -- the one way anything is written -----------------------------------------------------------
    def _write(self, change: Callable[[sqlite3.Connection], T]) -> T:
        """Run `change` in one transaction; roll back and explain on any failure."""
        if self._conn is None:
            raise ProjectError(f"{self.path.name} is closed.")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = change(self._conn)
            self._conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite may already have rolled back by itself (a full disk, an I/O error does that).
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise describe_sqlite_error(exc, self.path) from None
            raise
        return result
