"""The in-memory song tree: codes values, the five primitives, their events, and the invariant checker.

`TreeMirror` rebuilds the tree from events alone, the way the Qt adapter will; the stateful test in
test_history.py keeps one attached through random edits and checks it never drifts from the tree.
"""

from __future__ import annotations

import numpy as np
import pytest

from cocompose.song import (
    ArtistBlend,
    Codes,
    Conditioning,
    Node,
    NodeState,
    SongTree,
    TreeInvariantError,
    TreeListener,
    check_tree_invariants,
)

BASE = Conditioning("Elvis Presley", "rock", "a lyric")


class TreeMirror(TreeListener):
    """Children lists, node values and current path, kept only from events (plus reading the branch a
    node_added event announces, as a Qt view would after endInsertRows)."""

    def __init__(self, tree: SongTree) -> None:
        self.tree = tree
        self.children: dict[int | None, list[int]] = {None: []}
        self.values: dict[int, Node] = {}
        self.current_path: tuple[int, ...] = tree.current_path
        self.log: list[str] = []
        self.children[None] = [root.id for root in tree.children(None)]
        for node in tree.nodes():
            self._learn(node)
        tree.connect(self)

    def _learn(self, node: Node) -> None:
        self.values[node.id] = node
        self.children[node.id] = [child.id for child in self.tree.children(node.id)]
        self.children.setdefault(node.parent_id, [])

    def node_about_to_be_added(self, parent_id, row):
        self.pending = ("add", parent_id, row)

    def node_added(self, node, row):
        assert self.pending == ("add", node.parent_id, row)
        self.children.setdefault(node.parent_id, []).insert(row, node.id)
        for branch_node in [node, *(self.tree.node(i) for i in self.tree.subtree_ids(node.id)[1:])]:
            self._learn(branch_node)
        self.log.append(f"added {node.id}")

    def node_about_to_be_removed(self, node, row):
        assert self.children[node.parent_id][row] == node.id
        self.pending = ("remove", node.id)

    def node_removed(self, node, row):
        assert self.pending == ("remove", node.id)
        self.children[node.parent_id].pop(row)
        self.log.append(f"removed {node.id}")

    def node_about_to_be_moved(self, node, row, new_parent_id, new_row):
        assert self.children[node.parent_id][row] == node.id
        self.children[node.parent_id].pop(row)
        self.pending = ("move", node.id, new_parent_id, new_row)

    def node_moved(self, node, row):
        assert self.pending == ("move", node.id, node.parent_id, row)
        self.children[node.parent_id].insert(row, node.id)
        self.values[node.id] = node
        self.log.append(f"moved {node.id}")

    def node_changed(self, old, new):
        assert self.values[old.id] == old
        self.values[new.id] = new
        self.log.append(f"changed {new.id}")

    def current_path_changed(self, old_path, new_path):
        assert old_path == self.current_path
        self.current_path = new_path
        self.log.append(f"current {new_path}")

    def assert_matches_tree(self) -> None:
        live = [node.id for node in self.tree.nodes()]
        reachable, stack = [], list(self.children[None])
        while stack:
            node_id = stack.pop()
            reachable.append(node_id)
            stack.extend(self.children[node_id])
        assert sorted(reachable) == sorted(live)
        for node_id in live:
            assert self.children[node_id] == [c.id for c in self.tree.children(node_id)], node_id
            assert self.values[node_id] == self.tree.node(node_id), node_id
        assert self.current_path == self.tree.current_path


def _node(node_id: int, parent_id: int | None, codes=(), **kw) -> Node:
    return Node(id=node_id, parent_id=parent_id, codes=Codes.of(list(codes)), **kw)


def small_tree() -> SongTree:
    tree = SongTree()
    tree.attach([_node(1, None, conditioning=BASE)])
    tree.attach([_node(2, 1, [1, 2]), _node(4, 2, [5])])
    tree.attach([_node(3, 1, [3, 4])])
    tree.set_current(4)
    return tree


def test_codes_are_little_endian_int16_until_a_value_needs_int32():
    small = Codes.of([0, 2047, -1])
    assert small.dtype == "int16" and small.data == np.array([0, 2047, -1], "<i2").tobytes()
    wide = Codes.of([1, 70_000])
    assert wide.dtype == "int32" and wide.tolist() == [1, 70_000]
    assert (small + wide).dtype == "int32" and (small + wide).tolist() == [0, 2047, -1, 1, 70_000]
    assert Codes.of(np.arange(5)).split(2) == (Codes.of([0, 1]), Codes.of([2, 3, 4]))
    for bad in (0, 5):
        with pytest.raises(ValueError, match="both parts"):
            Codes.of(np.arange(5)).split(bad)
    with pytest.raises(ValueError, match="whole number"):
        Codes(b"\x01\x02\x03", "int16")


def test_conditioning_round_trips_through_json_with_a_blend():
    duet = Conditioning("Elvis Presley", "rock", "la", ArtistBlend("Aretha Franklin", 0.3))
    assert Conditioning.from_json(duet.to_json()) == duet
    with pytest.raises(ValueError, match="between 0 and 1"):
        ArtistBlend("x", 1.5)


def test_reading_paths_codes_and_inherited_conditioning():
    tree = small_tree()
    assert [n.id for n in tree.nodes()] == [1, 2, 4, 3]
    assert tree.current_path == (1, 2, 4)
    assert tree.path_codes(4).tolist() == [1, 2, 5]
    assert tree.conditioning_at(4) == BASE
    check_tree_invariants(tree)


def test_events_bracket_each_change_and_a_mirror_stays_in_step():
    tree = small_tree()
    mirror = TreeMirror(tree)
    tree.attach([_node(5, 3, [9]), _node(6, 5, [8])])
    tree.move(4, 3)
    tree.replace(_node(2, 1, [1, 2], name="verse"))
    tree.set_current(6)
    tree.set_current(3)  # the store always steps the current song off a branch before removing it
    tree.detach(5)
    mirror.assert_matches_tree()
    assert mirror.log == [
        "added 5",
        "moved 4",
        "current (1, 3, 4)",  # moving the current node re-routes the current path
        "changed 2",
        "current (1, 3, 5, 6)",
        "current (1, 3)",
        "removed 5",
    ]


def test_moving_a_node_above_the_current_one_announces_the_longer_path():
    tree = small_tree()
    mirror = TreeMirror(tree)
    tree.attach([_node(7, 1, [0])])
    tree.move(2, 7)
    assert mirror.current_path == (1, 7, 2, 4)
    with pytest.raises(ValueError, match="cycle"):
        tree.move(7, 4)


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda t: t.replace(_node(3, 1, [3, 4], hidden=True)) or t.set_current(3), "hidden"),
        (lambda t: t.replace(_node(1, None)), "base conditioning"),
        (lambda t: t.attach([_node(9, None, conditioning=BASE)]), "exactly one root"),
        (lambda t: t.replace(_node(3, 1, [], state=NodeState.DONE)), "no codes"),
        (lambda t: t.set_current(None), "current node"),
    ],
)
def test_the_invariant_checker_names_what_broke(breakage, message):
    tree = small_tree()
    breakage(tree)
    with pytest.raises(TreeInvariantError, match=message):
        check_tree_invariants(tree)


def test_an_empty_take_may_stream_but_not_be_done():
    tree = small_tree()
    tree.attach([_node(8, 4, [], state=NodeState.IN_PROGRESS)])
    check_tree_invariants(tree)
