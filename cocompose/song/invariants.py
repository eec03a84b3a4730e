"""The rules every song tree keeps, checked in one place so tests, the crash campaign and `info` agree.

The current path is defined as: the path from the root to the current node, where the current node is
live and neither it nor any node above it is hidden. It need not end at a leaf: a musician may pick a
take that already has children and let the song end there for now. A tree with a root always has a
current node (at worst the root), so there is always something to play.
"""

from __future__ import annotations

from cocompose.song.records import NodeState
from cocompose.song.tree import SongTree


class TreeInvariantError(AssertionError):
    """The tree broke a rule; the message says which node and which rule."""


def check_tree_invariants(tree: SongTree) -> None:
    # Walking down from the root visits each node once, so a node on a cycle (or under a missing parent)
    # is never reached: counting the reachable nodes is the cycle check.
    nodes = {node.id: node for node in tree.nodes()}
    if len(nodes) != len(tree):
        raise TreeInvariantError(f"{len(tree) - len(nodes)} nodes are not reachable from the root")
    if not nodes:
        if tree.current_id is not None:
            raise TreeInvariantError("an empty tree has a current node")
        return
    roots = [node for node in nodes.values() if node.parent_id is None]
    if len(roots) != 1:
        raise TreeInvariantError(f"a song has exactly one root, found {[r.id for r in roots]}")
    root = roots[0]
    if root.conditioning is None:
        raise TreeInvariantError("the root must carry the base conditioning")
    if root.hidden:
        raise TreeInvariantError("the root cannot be hidden")
    for node in nodes.values():
        if node.parent_id is not None and node.parent_id not in nodes:
            raise TreeInvariantError(f"node {node.id} has a missing parent {node.parent_id}")
        if node.id not in [child.id for child in tree.children(node.parent_id)]:
            raise TreeInvariantError(f"node {node.id} is not listed among its parent's children")
        # A take marked done with no codes would be silent; streaming and interrupted ones may be empty.
        if node.state is NodeState.DONE and node.parent_id is not None and len(node.codes) == 0:
            raise TreeInvariantError(f"finished node {node.id} has no codes")
    current = tree.current_id
    if current is None or current not in nodes:
        raise TreeInvariantError(f"the current node {current} is not in the tree")
    hidden_on_path = [i for i in tree.current_path if nodes[i].hidden]
    if hidden_on_path:
        raise TreeInvariantError(f"the current path runs through hidden nodes {hidden_on_path}")
