"""A copy of a project's song tree for another thread, brought up to date by diffing, never by rebuilding.

The engine's worker writes the project (and so fires its SongTree's events) on its own thread, but a Qt
item model may only hear about changes on the GUI thread. So the GUI keeps a second SongTree, this mirror,
and calls `sync(snapshot)` on its own thread with a snapshot taken under the service's lock. The mirror's
changes then go through the same five primitives as the project's, so a QtSongTreeModel watching the mirror
sees ordinary inserts, moves, removals and edits, and keeps its selection and expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

from cocompose.song import Node, SongTree


@dataclass(frozen=True)
class TreeSnapshot:
    """Every live node (parents before children) and the current node, as they were at one instant."""

    nodes: tuple[Node, ...]
    current_id: int | None

    @classmethod
    def of(cls, tree: SongTree) -> TreeSnapshot:
        """Take it while holding whatever lock guards `tree`; nodes are frozen, so this is a cheap copy."""
        return cls(tuple(tree.nodes()), tree.current_id)


def sync(mirror: SongTree, snapshot: TreeSnapshot) -> bool:
    """Change `mirror` until it equals the snapshot; returns whether anything changed.

    Order matters: new nodes first (their parents come first in the snapshot), then moves (a cut hangs
    old children under a new node, its undo hangs them back), then the current node (so the current path
    never runs through a node being removed), then removals (whatever is left under a removed node goes
    with it), then field changes.
    """
    wanted = {node.id: node for node in snapshot.nodes}
    changed = False
    for node in snapshot.nodes:
        if node.id not in mirror:
            mirror.attach([node])
            changed = True
    for node in snapshot.nodes:
        if mirror.node(node.id).parent_id != node.parent_id:
            mirror.move(node.id, node.parent_id)
            changed = True
    # Before any removal: the current path must never run through a node that is no longer there.
    if mirror.current_id != snapshot.current_id:
        mirror.set_current(snapshot.current_id)
        changed = True
    gone = [node.id for node in mirror.nodes() if node.id not in wanted]
    for node_id in gone:
        if node_id in mirror:  # not already taken out with a removed parent
            mirror.detach(node_id)
            changed = True
    for node in snapshot.nodes:
        if mirror.node(node.id) != node:
            mirror.replace(node)
            changed = True
    return changed
