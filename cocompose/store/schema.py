"""The project file's tables: version 1, and what later versions change. See docs/PROJECT-FORMAT.md
for what each column means.

Ids use AUTOINCREMENT so a deleted node's id is never given to a new node: undo history and job rows
refer to nodes by id, and a reused id would silently point them at the wrong take.
"""

from __future__ import annotations

# 'CCMP' as a big-endian int: `PRAGMA application_id` tells our files from any other SQLite database.
APPLICATION_ID = 0x43434D50
SCHEMA_VERSION = 3
FILE_SUFFIX = ".cocompose"

SCHEMA_V1 = """
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- 'prime_audio', ...
    original_name TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- command class, see cocompose/history.py
    label TEXT NOT NULL,                -- 'Delete branch', shown in Edit > Undo ...
    payload TEXT NOT NULL,              -- JSON of the command's fields (ids and small values only)
    undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1)),
    created_at REAL NOT NULL
);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER REFERENCES nodes(id),
    codes BLOB NOT NULL,
    codes_dtype TEXT NOT NULL CHECK (codes_dtype IN ('int16', 'int32')),
    conditioning TEXT,                  -- JSON, NULL = inherited from the parent
    seed INTEGER,                       -- sampling settings, all NULL when not sampled (root, cut)
    temperature REAL,
    top_k INTEGER,
    top_p REAL,
    model TEXT,
    name TEXT NOT NULL DEFAULT '',
    hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    state TEXT NOT NULL CHECK (state IN ('done', 'in_progress', 'interrupted')),
    created_at REAL NOT NULL,
    deleted_by INTEGER                  -- history.seq that took it out of the tree; NULL = live
);
CREATE INDEX nodes_by_parent ON nodes(parent_id);
CREATE INDEX nodes_by_deleter ON nodes(deleted_by);
CREATE TABLE song (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    title TEXT NOT NULL,
    planned_seconds REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    codes_per_second REAL NOT NULL,
    prime_audio_blob INTEGER REFERENCES blobs(id),
    root_id INTEGER REFERENCES nodes(id),
    current_id INTEGER REFERENCES nodes(id),
    created_at REAL NOT NULL
);
CREATE TABLE previews (
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    decoder_hash TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    audio BLOB NOT NULL,                -- mono float32 little-endian samples
    created_at REAL NOT NULL,
    PRIMARY KEY (node_id, decoder_hash)
);
CREATE TABLE upsample_windows (
    leaf_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    path_sha256 TEXT NOT NULL,          -- of the top-level codes being upsampled; a mismatch = stale
    start_code INTEGER NOT NULL,        -- range of the path's top-level codes
    end_code INTEGER NOT NULL,
    level INTEGER NOT NULL,
    window_index INTEGER NOT NULL,
    codes BLOB NOT NULL,
    codes_dtype TEXT NOT NULL CHECK (codes_dtype IN ('int16', 'int32')),
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    PRIMARY KEY (leaf_id, path_sha256, start_code, end_code, level, window_index)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- 'sample', 'upsample', 'decode_preview', ...
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
    node_id INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
    progress REAL NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '{}', -- JSON: request parameters, error text
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

# Version 2: jobs may be 'paused' (held aside by the musician until resumed). SQLite cannot change a CHECK
# constraint in place, so the table is made anew under another name, filled, and renamed.
JOBS_V2 = """
CREATE TABLE jobs_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled', 'interrupted')),
    node_id INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
    progress REAL NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO jobs_v2 SELECT id, kind, state, node_id, progress, detail, created_at, updated_at FROM jobs;
-- AUTOINCREMENT's counter goes with the table, so no id is given twice (even one whose row is gone).
DELETE FROM sqlite_sequence WHERE name = 'jobs_v2';
UPDATE sqlite_sequence SET name = 'jobs_v2' WHERE name = 'jobs';
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
"""

# Version 3: takes record the label guidance they were sampled with. Older takes had none: NULL reads as 0.
NODES_V3 = """
ALTER TABLE nodes ADD COLUMN guidance REAL;
"""
