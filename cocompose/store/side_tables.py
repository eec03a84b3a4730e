"""Jobs, preview audio and upsampling progress: facts about the work, kept out of the undo history.

Previews are a cache (decoded audio per take and decoder); dropping them never changes the song.
Upsampling windows are saved one by one so an interrupted upsampling resumes at the first missing window;
they are keyed by a hash of the top-level codes they upsample, so a window made for other codes is never
reused by mistake.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cocompose.song.codes import Codes

JOB_STATES = ("queued", "running", "paused", "done", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: str
    node_id: int | None
    progress: float
    detail: dict
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class UpsampleWindow:
    leaf_id: int
    path_sha256: str
    start_code: int
    end_code: int
    level: int
    window_index: int
    codes: Codes
    done: bool


def codes_sha256(codes: Codes) -> str:
    """Identity of a run of top-level codes, independent of how wide its integers are stored."""
    return hashlib.sha256(codes.widened_to("int32").data).hexdigest()


class ProjectSideTables:
    _write: Callable  # Project._write
    _conn: sqlite3.Connection

    # -- jobs ------------------------------------------------------------------------------------
    def add_job(self, kind: str, node_id: int | None = None, detail: dict | None = None) -> int:
        now = time.time()
        return self._write(
            lambda conn: (
                conn.execute(
                    "INSERT INTO jobs (kind, state, node_id, detail, created_at, updated_at) "
                    "VALUES (?, 'queued', ?, ?, ?, ?)",
                    (kind, node_id, json.dumps(detail or {}), now, now),
                ).lastrowid
            )
        )

    def update_job(self, job_id: int, state: str | None = None, progress: float | None = None) -> None:
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"job state must be one of {JOB_STATES}, not {state!r}")
        self._write(
            lambda conn: conn.execute(
                "UPDATE jobs SET state = COALESCE(?, state), progress = COALESCE(?, progress), "
                "updated_at = ? WHERE id = ?",
                (state, progress, time.time(), job_id),
            )
        )

    def jobs(self) -> list[Job]:
        rows = self._conn.execute(
            "SELECT id, kind, state, node_id, progress, detail, created_at, updated_at FROM jobs ORDER BY id"
        )
        return [Job(*row[:5], json.loads(row[5]), *row[6:]) for row in rows]

    # -- preview cache ---------------------------------------------------------------------------
    def put_preview(self, node_id: int, decoder_hash: str, sample_rate: int, audio: np.ndarray) -> None:
        data = np.asarray(audio, dtype="<f4").tobytes()
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO previews VALUES (?, ?, ?, ?, ?)",
                (node_id, decoder_hash, sample_rate, data, time.time()),
            )
        )

    def preview(self, node_id: int, decoder_hash: str) -> tuple[int, np.ndarray] | None:
        """(sample_rate, mono float32 audio) if cached for this decoder, else None."""
        row = self._conn.execute(
            "SELECT sample_rate, audio FROM previews WHERE node_id = ? AND decoder_hash = ?",
            (node_id, decoder_hash),
        ).fetchone()
        return (row[0], np.frombuffer(row[1], dtype="<f4").astype(np.float32)) if row else None

    def evict_previews(self, keep_decoder_hash: str | None = None) -> int:
        """Drop cached previews (all, or those of other decoders); returns how many went."""
        return self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM previews WHERE ? IS NULL OR decoder_hash != ?",
                    (keep_decoder_hash, keep_decoder_hash),
                ).rowcount
            )
        )

    # -- upsampling progress ---------------------------------------------------------------------
    def save_upsample_window(self, window: UpsampleWindow) -> None:
        w = window
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO upsample_windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    w.leaf_id,
                    w.path_sha256,
                    w.start_code,
                    w.end_code,
                    w.level,
                    w.window_index,
                    w.codes.data,
                    w.codes.dtype,
                    int(w.done),
                ),
            )
        )

    def upsample_windows(self, leaf_id: int, path_sha256: str, level: int) -> list[UpsampleWindow]:
        rows = self._conn.execute(
            "SELECT leaf_id, path_sha256, start_code, end_code, level, window_index, codes, codes_dtype, "
            "done "
            "FROM upsample_windows WHERE leaf_id = ? AND path_sha256 = ? AND level = ? "
            "ORDER BY start_code, window_index",
            (leaf_id, path_sha256, level),
        )
        return [UpsampleWindow(*r[:6], Codes(bytes(r[6]), r[7]), bool(r[8])) for r in rows]
