"""The primitives every edit is made of, applied to the file now and to the in-memory tree after commit.

Commands (cocompose/history.py) only ever call these. Each primitive writes its rows inside the open
transaction and queues the matching SongTree change; the project runs the queue only once COMMIT has
succeeded, so a failed write never shows the musician a take that is not on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace

from cocompose.song.codes import Codes
from cocompose.song.records import Node
from cocompose.song.tree import SongTree
from cocompose.store.rows import NODE_COLUMNS, load_node, node_from_row, update_node


class TreeEditor:
    def __init__(self, conn: sqlite3.Connection, tree: SongTree) -> None:
        self.conn = conn
        self.tree = tree
        self.pending: list[Callable[[], None]] = []  # SongTree calls to make after COMMIT

    # -- reading (always from the file: it is the truth inside the transaction) -----------------
    def node(self, node_id: int) -> Node:
        return load_node(self.conn, node_id)

    def is_live(self, node_id: int) -> bool:
        row = self.conn.execute("SELECT deleted_by IS NULL FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return bool(row and row[0])

    def child_ids(self, node_id: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT id FROM nodes WHERE parent_id = ? AND deleted_by IS NULL ORDER BY id", (node_id,)
        )
        return [row[0] for row in rows]

    def live_subtree(self, node_id: int) -> list[int]:
        found, stack = [], [node_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(self.child_ids(current))
        return found

    def current_id(self) -> int:
        return self.conn.execute("SELECT current_id FROM song").fetchone()[0]

    # -- writing ---------------------------------------------------------------------------------
    def update(self, node: Node) -> None:
        """New field values for a node that keeps its parent."""
        update_node(self.conn, node)
        if self.is_live(node.id):
            self.pending.append(lambda: self.tree.replace(node))

    def set_codes(self, node_id: int, codes: Codes) -> None:
        self.update(replace(self.node(node_id), codes=codes))

    def move(self, node_id: int, new_parent_id: int) -> None:
        self.conn.execute("UPDATE nodes SET parent_id = ? WHERE id = ?", (new_parent_id, node_id))
        self.pending.append(lambda: self.tree.move(node_id, new_parent_id))

    def set_current(self, node_id: int) -> None:
        self.conn.execute("UPDATE song SET current_id = ?", (node_id,))
        self.pending.append(lambda: self.tree.set_current(node_id))

    def take_out(self, node_ids: list[int], seq: int) -> None:
        """Take live nodes out of the tree, marked with the history step that did it (a tombstone:
        the rows stay, codes and all, so undoing brings back exactly what was there)."""
        chosen = set(node_ids)
        self.conn.executemany(
            "UPDATE nodes SET deleted_by = ? WHERE id = ? AND deleted_by IS NULL",
            [(seq, node_id) for node_id in node_ids],
        )
        for node_id in node_ids:
            parent_id = self.conn.execute("SELECT parent_id FROM nodes WHERE id = ?", (node_id,)).fetchone()[
                0
            ]
            if parent_id not in chosen:  # one removal event per branch, as Qt removes a row with its subtree
                self.pending.append(lambda node_id=node_id: self.tree.detach(node_id))

    def bring_back(self, seq: int) -> None:
        """Put back every node that history step `seq` took out, with its codes as they are now."""
        rows = self.conn.execute(
            f"SELECT {NODE_COLUMNS} FROM nodes WHERE deleted_by = ? ORDER BY id", (seq,)
        ).fetchall()
        self.conn.execute("UPDATE nodes SET deleted_by = NULL WHERE deleted_by = ?", (seq,))
        nodes = [node_from_row(row) for row in rows]
        returning = {node.id for node in nodes}
        for top in (node for node in nodes if node.parent_id not in returning):
            branch = _branch_of(top, nodes)
            self.pending.append(lambda branch=branch: self.tree.attach(branch))


def _branch_of(top: Node, nodes: list[Node]) -> list[Node]:
    """`top` and the nodes below it among `nodes`, parents first."""
    by_parent: dict[int | None, list[Node]] = {}
    for node in nodes:
        by_parent.setdefault(node.parent_id, []).append(node)
    branch, stack = [], [top]
    while stack:
        node = stack.pop()
        branch.append(node)
        stack.extend(by_parent.get(node.id, []))
    return branch
