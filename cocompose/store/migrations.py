"""Upgrading project files, one version step at a time, each step inside the caller's transaction.

MIGRATIONS[n] turns a version-n file into a version-(n + 1) file. Version 0 is an empty database, so
creating a project is simply "migrate from 0": new and upgraded files go through the same code.
SQLite's DDL is transactional, so a failed step leaves the file at the version it had.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from cocompose.store.errors import ProjectError
from cocompose.store.schema import APPLICATION_ID, JOBS_V2, NODES_V3, SCHEMA_V1, SCHEMA_VERSION

Migration = Callable[[sqlite3.Connection], None]


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in split_statements(SCHEMA_V1):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def split_statements(script: str) -> list[str]:
    """executescript would COMMIT the caller's transaction first, so migrations run statements one by one
    (split where SQLite says a statement is complete, so a ';' inside a comment is harmless)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"unfinished SQL statement: {pending.strip()[:60]}")
    return statements


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Jobs may be 'paused'. The rebuilt table keeps every row, id and AUTOINCREMENT's counter."""
    for statement in split_statements(JOBS_V2):
        conn.execute(statement)


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Takes gain a guidance column; existing rows keep NULL, which reads as "sampled without"."""
    for statement in split_statements(NODES_V3):
        conn.execute(statement)


MIGRATIONS: dict[int, Migration] = {0: _create_v1, 1: _v1_to_v2, 2: _v2_to_v3}


def file_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    target: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> list[int]:
    """Run the steps from the file's version up to `target` (in an open transaction); return the steps run."""
    version = file_version(conn)
    if version > target:
        raise ProjectError(
            f"This project was saved by a newer Cocompose (project format {version}); this version reads "
            f"format {target} and older. Update Cocompose to open it. The file was not changed."
        )
    steps = []
    while version < target:
        if version not in migrations:
            raise ProjectError(f"Cocompose cannot upgrade a format {version} project: no upgrade is known")
        migrations[version](conn)
        version += 1
        # PRAGMA does not take parameters; version is an int we computed, so formatting it is safe.
        conn.execute(f"PRAGMA user_version = {version}")
        steps.append(version)
    return steps
