"""The musician's edits. Each is one transaction and one undoable history step (streaming appends and
finishing a take are the exceptions: they record what the sampler did, which is not the musician's to undo).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from cocompose.history import (
    AddTakes,
    Cut,
    DeleteBranch,
    History,
    Pick,
    Rename,
    SetConditioning,
    SetHidden,
)
from cocompose.song.codes import Codes
from cocompose.song.records import Conditioning, Node, NodeState, Sampling
from cocompose.song.tree import SongTree
from cocompose.store.editor import TreeEditor
from cocompose.store.errors import ProjectError
from cocompose.store.rows import insert_node

T = TypeVar("T")


class ProjectEdits:
    tree: SongTree
    _history: History
    _write: Callable  # Project._write

    def _edit(self, change: Callable[[TreeEditor, History], T]) -> T:
        """One transaction; the tree sees the change only after COMMIT."""
        editors: list[TreeEditor] = []

        def run(conn: sqlite3.Connection) -> T:
            editors.append(TreeEditor(conn, self.tree))
            return change(editors[0], self._history)

        result = self._write(run)
        for apply in editors[0].pending:
            apply()
        return result

    def _live(self, node_id: int) -> Node:
        if node_id not in self.tree:
            raise ProjectError(f"Take {node_id} is not in this song (it may have been deleted).")
        return self.tree.node(node_id)

    def _current_after_removing(self, node_id: int) -> int:
        """Where the current song goes when `node_id` leaves it: up to the parent, if it was on it."""
        path = self.tree.current_path
        return self.tree.node(node_id).parent_id if node_id in path else self.tree.current_id

    # -- takes -----------------------------------------------------------------------------------------
    def add_takes(
        self,
        parent_id: int,
        samplings: Sequence[Sampling],
        codes: Sequence[Codes] | None = None,
        conditioning: Conditioning | None = None,
        label: str | None = None,
    ) -> list[int]:
        """N new children of `parent_id` in one step, one Sampling (one seed) each. Without `codes` the
        takes start empty and `in_progress`, to be grown by `append_codes` as the sampler streams."""
        parent = self._live(parent_id)
        if parent.state is NodeState.IN_PROGRESS:
            raise ProjectError("Wait until this take has finished before continuing from it.")
        if codes is not None and len(codes) != len(samplings):
            raise ValueError(f"{len(samplings)} samplings but {len(codes)} code runs")
        if not samplings:
            raise ValueError("add_takes needs at least one sampling")

        def change(ed: TreeEditor, history: History) -> list[int]:
            seq = history.begin_step(AddTakes, label)
            now, ids = time.time(), []
            for i, sampling in enumerate(samplings):
                take = Node(
                    id=None,
                    parent_id=parent_id,
                    codes=codes[i] if codes else Codes(),
                    conditioning=conditioning,
                    sampling=sampling,
                    created_at=now,
                    state=NodeState.DONE if codes else NodeState.IN_PROGRESS,
                )
                ids.append(insert_node(ed.conn, take, deleted_by=seq))
            command = AddTakes(tuple(ids))
            history.record(seq, command)
            command.do(ed, seq)
            return ids

        return self._edit(change)

    def add_variations(self, node_id: int, samplings: Sequence[Sampling], codes=None) -> list[int]:
        """More siblings of `node_id`: new takes continuing from the same point."""
        parent_id = self._live(node_id).parent_id
        if parent_id is None:
            raise ProjectError("The start of the song has no variations; add takes after it instead.")
        return self.add_takes(parent_id, samplings, codes, label="Add variations")

    def append_codes(self, node_id: int, codes: Codes) -> None:
        """Streaming: grow a take that is being sampled. Not a history step."""

        def change(ed: TreeEditor, history: History) -> None:
            node = ed.node(node_id)
            if node.state is not NodeState.IN_PROGRESS:
                raise ProjectError(f"Take {node_id} is not being sampled; its codes are final.")
            ed.update(replace(node, codes=node.codes + codes))

        self._edit(change)

    def end_take(self, node_id: int, state: NodeState = NodeState.DONE) -> None:
        """The sampler finished (DONE) or stopped early (INTERRUPTED). Not a history step."""

        def change(ed: TreeEditor, history: History) -> None:
            node = ed.node(node_id)
            if state is NodeState.DONE and len(node.codes) == 0:
                raise ProjectError(f"Take {node_id} has no music yet, so it cannot be finished.")
            ed.update(replace(node, state=state))

        self._edit(change)

    # -- shaping the tree ---------------------------------------------------------------------------
    def pick(self, node_id: int) -> None:
        """Make root..node_id the current song (what plays and exports)."""
        self._live(node_id)
        hidden = [i for i in self.tree.path_to(node_id) if self.tree.node(i).hidden]
        if hidden:
            raise ProjectError("A hidden take cannot be part of the current song; unhide it first.")
        self._run(Pick(self.tree.current_id, node_id))

    def cut(self, node_id: int, at: int, conditioning: Conditioning | None = None,
            label: str | None = None) -> int:  # fmt: skip
        """Continue from inside a take: keep codes[:at] in it, move codes[at:] and its children to a new
        node, and return that node's id. Add takes to `node_id` afterwards to branch from the cut.
        `conditioning`: the new node starts a conditioning change (another voice from the cut on), in
        the same undo step; None: it inherits, and sounds as the whole take did."""
        node = self._live(node_id)
        if node.state is NodeState.IN_PROGRESS:
            raise ProjectError("Wait until this take has finished before continuing from inside it.")
        if not 0 < at < len(node.codes):
            raise ProjectError(f"Choose a point inside the take (1 to {len(node.codes) - 1} codes in).")
        current = self.tree.current_id

        def change(ed: TreeEditor, history: History) -> int:
            seq = history.begin_step(Cut, label)
            second = replace(
                node,
                id=None,
                parent_id=node_id,
                codes=node.codes.split(at)[1],
                conditioning=conditioning,
                name="",
                hidden=False,
                created_at=time.time(),
            )
            second_id = insert_node(ed.conn, second, deleted_by=seq)
            adopted = tuple(child.id for child in self.tree.children(node_id))
            command = Cut(
                node_id, at, second_id, adopted, current, second_id if current == node_id else current
            )
            history.record(seq, command)
            command.do(ed, seq)
            return second_id

        return self._edit(change)

    def set_conditioning(self, node_id: int, conditioning: Conditioning | None) -> None:
        """Change artist/genre/lyrics from this take on (its subtree: a duet). None = inherit again."""
        node = self._live(node_id)
        if conditioning is None and node.parent_id is None:
            raise ProjectError("The start of the song must keep its artist and genre.")
        old = node.conditioning.to_json() if node.conditioning else None
        new = conditioning.to_json() if conditioning else None
        self._run(SetConditioning(node_id, old, new))

    def rename(self, node_id: int, name: str) -> None:
        self._run(Rename(node_id, self._live(node_id).name, name))

    def set_hidden(self, node_id: int, hidden: bool = True) -> None:
        """Hide a take (and so its subtree) from the tree view; the current song steps off it."""
        node = self._live(node_id)
        if node.parent_id is None and hidden:
            raise ProjectError("The start of the song cannot be hidden.")
        after = self._current_after_removing(node_id) if hidden else self.tree.current_id
        self._run(
            SetHidden(node_id, node.hidden, hidden, self.tree.current_id, after),
            "Hide take" if hidden else "Unhide take",
        )

    def delete_branch(self, node_id: int) -> None:
        """Take a take and everything after it out of the song (undo brings it all back)."""
        node = self._live(node_id)
        if node.parent_id is None:
            raise ProjectError("The start of the song cannot be deleted.")
        self._run(DeleteBranch(node_id, self.tree.current_id, self._current_after_removing(node_id)))

    def _run(self, command, label: str | None = None) -> None:
        self._edit(lambda ed, history: command.do(ed, _recorded(history, command, label)))

    # -- history -------------------------------------------------------------------------------------
    def undo(self) -> str | None:
        """Revert the newest edit; returns its label, or None when there is nothing to undo."""
        return self._edit(lambda ed, history: history.undo(ed))

    def redo(self) -> str | None:
        return self._edit(lambda ed, history: history.redo(ed))

    @property
    def undo_label(self) -> str | None:
        return self._history.undo_label()

    @property
    def redo_label(self) -> str | None:
        return self._history.redo_label()


def _recorded(history: History, command, label: str | None = None) -> int:
    seq = history.begin_step(type(command), label)
    history.record(seq, command)
    return seq
