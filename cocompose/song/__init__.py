"""The song as a tree of takes: records, codes, the evented in-memory tree and its invariants (no Qt)."""

from cocompose.song.codes import Codes
from cocompose.song.invariants import TreeInvariantError, check_tree_invariants
from cocompose.song.records import (
    ArtistBlend,
    Conditioning,
    ModelInfo,
    Node,
    NodeState,
    Sampling,
    SongInfo,
)
from cocompose.song.tree import SongTree, TreeListener

__all__ = [
    "ArtistBlend",
    "Codes",
    "Conditioning",
    "ModelInfo",
    "Node",
    "NodeState",
    "Sampling",
    "SongInfo",
    "SongTree",
    "TreeInvariantError",
    "TreeListener",
    "check_tree_invariants",
]
