"""Nodes to table rows and back: the only place that knows the `nodes` column layout."""

from __future__ import annotations

import sqlite3

from cocompose.song.codes import Codes
from cocompose.song.records import Conditioning, Node, NodeState, Sampling

NODE_COLUMNS = (
    "id, parent_id, codes, codes_dtype, conditioning, seed, temperature, top_k, top_p, model, "
    "name, hidden, state, created_at, guidance"
)


def node_from_row(row: sqlite3.Row | tuple) -> Node:
    (node_id, parent_id, codes, dtype, conditioning, seed, temperature, top_k, top_p, model) = row[:10]
    name, hidden, state, created_at, guidance = row[10:15]
    sampling = None
    if seed is not None:
        sampling = Sampling(seed, temperature, top_k, top_p, model, guidance=guidance or 0.0)
    return Node(
        id=node_id,
        parent_id=parent_id,
        codes=Codes(bytes(codes), dtype),
        conditioning=Conditioning.from_json(conditioning) if conditioning else None,
        sampling=sampling,
        name=name,
        hidden=bool(hidden),
        state=NodeState(state),
        created_at=created_at,
    )


def node_values(node: Node) -> tuple:
    """Values in NODE_COLUMNS order."""
    s = node.sampling
    return (
        node.id,
        node.parent_id,
        node.codes.data,
        node.codes.dtype,
        node.conditioning.to_json() if node.conditioning else None,
        s.seed if s else None,
        s.temperature if s else None,
        s.top_k if s else None,
        s.top_p if s else None,
        s.model if s else None,
        node.name,
        int(node.hidden),
        node.state.value,
        node.created_at,
        s.guidance if s else None,
    )


def insert_node(conn: sqlite3.Connection, node: Node, deleted_by: int | None) -> int:
    """Insert a node (a new id is given when `node.id` is None); returns its id."""
    placeholders = ", ".join("?" * 16)
    cursor = conn.execute(
        f"INSERT INTO nodes ({NODE_COLUMNS}, deleted_by) VALUES ({placeholders})",
        (*node_values(node), deleted_by),
    )
    return int(cursor.lastrowid)


def update_node(conn: sqlite3.Connection, node: Node) -> None:
    columns = NODE_COLUMNS.split(", ")[1:]
    assignments = ", ".join(f"{column} = ?" for column in columns)
    conn.execute(f"UPDATE nodes SET {assignments} WHERE id = ?", (*node_values(node)[1:], node.id))


def load_node(conn: sqlite3.Connection, node_id: int) -> Node:
    row = conn.execute(f"SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?", (node_id,)).fetchone()
    if row is None:
        raise KeyError(f"no node {node_id} in this project")
    return node_from_row(row)


def load_live_nodes(conn: sqlite3.Connection) -> list[Node]:
    """All nodes in the tree, parents before children (ids grow with creation, but a cut's second half
    can be younger than the children it adopts, so order by depth rather than by id)."""
    rows = conn.execute(
        f"""WITH RECURSIVE walk(id, depth) AS (
                SELECT id, 0 FROM nodes WHERE parent_id IS NULL AND deleted_by IS NULL
                UNION ALL
                SELECT n.id, walk.depth + 1 FROM nodes n JOIN walk ON n.parent_id = walk.id
                WHERE n.deleted_by IS NULL)
            SELECT {", ".join("n." + c for c in NODE_COLUMNS.split(", "))}
            FROM walk JOIN nodes n ON n.id = walk.id ORDER BY walk.depth, n.id"""
    ).fetchall()
    return [node_from_row(row) for row in rows]
