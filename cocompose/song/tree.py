"""The song tree in memory: Qt-free, evented, and changed only through five primitives.

A Qt adapter (in ui/) mirrors it: each `*_about_to_be_*` event is where it calls beginInsertRows /
beginRemoveRows / beginMoveRows, and the matching past-tense event is where it calls the end* twin. Events
about a node cover its whole subtree, as rows do in Qt: attaching a restored branch is one insertion.
Children are ordered by node id, i.e. by creation, so a row number is stable while siblings come and go.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import replace

from cocompose.song.codes import Codes
from cocompose.song.records import Conditioning, Node


class TreeListener:
    """Override what you need (each is a no-op here). `row` is the index among the parent's children."""

    def node_about_to_be_added(self, parent_id: int | None, row: int) -> None: ...
    def node_added(self, node: Node, row: int) -> None: ...
    def node_about_to_be_removed(self, node: Node, row: int) -> None: ...
    def node_removed(self, node: Node, row: int) -> None: ...
    def node_about_to_be_moved(self, node: Node, row: int, new_parent_id: int, new_row: int) -> None: ...
    def node_moved(self, node: Node, row: int) -> None: ...
    def node_changed(self, old: Node, new: Node) -> None: ...
    def current_path_changed(self, old_path: tuple[int, ...], new_path: tuple[int, ...]) -> None: ...


class SongTree:
    """Live nodes by id, their children in creation order, and the current node (the song that plays)."""

    def __init__(self) -> None:
        self._nodes: dict[int, Node] = {}
        self._children: dict[int | None, list[int]] = {None: []}
        self._current: int | None = None
        self._announced_path: tuple[int, ...] = ()  # the current path listeners last heard about
        self._listeners: list[TreeListener] = []

    # -- observing -------------------------------------------------------------------------------
    def connect(self, listener: TreeListener) -> None:
        self._listeners.append(listener)

    def disconnect(self, listener: TreeListener) -> None:
        self._listeners.remove(listener)

    def _emit(self, event: str, *args: object) -> None:
        for listener in list(self._listeners):
            getattr(listener, event)(*args)

    # -- reading ---------------------------------------------------------------------------------
    @property
    def root(self) -> Node | None:
        roots = self._children[None]
        return self._nodes[roots[0]] if roots else None

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes(self) -> Iterator[Node]:
        """Every node, parents before children (depth first, children in creation order)."""
        stack = list(reversed(self._children[None]))
        while stack:
            node_id = stack.pop()
            yield self._nodes[node_id]
            stack.extend(reversed(self._children.get(node_id, [])))

    def children(self, node_id: int | None) -> list[Node]:
        return [self._nodes[i] for i in self._children.get(node_id, [])]

    def row(self, node_id: int) -> int:
        return self._children[self._nodes[node_id].parent_id].index(node_id)

    def path_to(self, node_id: int) -> tuple[int, ...]:
        """Ids from the root down to `node_id`, both included."""
        path = []
        cursor: int | None = node_id
        while cursor is not None:
            path.append(cursor)
            cursor = self._nodes[cursor].parent_id
        return tuple(reversed(path))

    def subtree_ids(self, node_id: int) -> list[int]:
        """`node_id` and all its descendants, parents first."""
        found, stack = [], [node_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self._children.get(current, [])))
        return found

    @property
    def current_id(self) -> int | None:
        return self._current

    @property
    def current_path(self) -> tuple[int, ...]:
        return self.path_to(self._current) if self._current is not None else ()

    def path_codes(self, node_id: int) -> Codes:
        """What plays from the start of the song to the end of `node_id`."""
        total = Codes()
        for step in self.path_to(node_id):
            total = total + self._nodes[step].codes
        return total

    def conditioning_at(self, node_id: int) -> Conditioning:
        """The conditioning in force at a node: its own change, else the nearest ancestor's."""
        for step in reversed(self.path_to(node_id)):
            if self._nodes[step].conditioning is not None:
                return self._nodes[step].conditioning
        raise LookupError(f"no conditioning on the path to node {node_id}: the root must carry one")

    # -- the five primitives (the store calls these after its transaction commits) -------------
    def attach(self, nodes: Iterable[Node]) -> None:
        """Add a branch (root first, every parent before its children) under a node already in the tree."""
        branch = list(nodes)
        top = branch[0]
        if any(node.id in self._nodes for node in branch):
            raise KeyError(f"cannot attach node {top.id}'s branch: some of its nodes are already in the tree")
        if top.parent_id is not None and top.parent_id not in self._nodes:
            raise KeyError(f"cannot attach node {top.id}: its parent {top.parent_id} is not in the tree")
        siblings = self._children.setdefault(top.parent_id, [])
        row = bisect.bisect(siblings, top.id)
        self._emit("node_about_to_be_added", top.parent_id, row)
        siblings.insert(row, top.id)
        for node in branch:
            self._nodes[node.id] = node
            self._children.setdefault(node.id, [])
            if node is not top:
                bisect.insort(self._children[node.parent_id], node.id)
        self._emit("node_added", top, row)

    def detach(self, node_id: int) -> list[Node]:
        """Remove a node with its whole subtree; returns the removed nodes, parents first."""
        top = self._nodes[node_id]
        row = self.row(node_id)
        removed_ids = self.subtree_ids(node_id)
        self._emit("node_about_to_be_removed", top, row)
        self._children[top.parent_id].pop(row)
        removed = [self._nodes.pop(i) for i in removed_ids]
        for i in removed_ids:
            del self._children[i]
        self._emit("node_removed", top, row)
        return removed

    def replace(self, node: Node) -> None:
        """New field values for a node that keeps its place (parent unchanged)."""
        old = self._nodes[node.id]
        if old.parent_id != node.parent_id:
            raise ValueError(f"replace cannot move node {node.id}; use move")
        self._nodes[node.id] = node
        self._emit("node_changed", old, node)

    def move(self, node_id: int, new_parent_id: int) -> None:
        """Re-parent a node with its subtree (a cut hangs the old children under the second half)."""
        node = self._nodes[node_id]
        if node_id in self.path_to(new_parent_id):
            raise ValueError(f"moving node {node_id} under {new_parent_id} would make a cycle")
        row = self.row(node_id)
        new_siblings = self._children[new_parent_id]
        new_row = bisect.bisect(new_siblings, node_id)
        self._emit("node_about_to_be_moved", node, row, new_parent_id, new_row)
        self._children[node.parent_id].pop(row)
        new_siblings.insert(new_row, node_id)
        moved = replace(node, parent_id=new_parent_id)
        self._nodes[node_id] = moved
        self._emit("node_moved", moved, new_row)
        self._announce_current_path()  # a move above the current node lengthens its path

    def set_current(self, node_id: int | None) -> None:
        if node_id is not None and node_id not in self._nodes:
            raise KeyError(f"node {node_id} is not in the tree")
        self._current = node_id
        self._announce_current_path()

    def _announce_current_path(self) -> None:
        old_path, new_path = self._announced_path, self.current_path
        if new_path != old_path:
            self._announced_path = new_path
            self._emit("current_path_changed", old_path, new_path)
