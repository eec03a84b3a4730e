"""Undo and redo: every edit is a small command object whose fields are saved in the project file.

Because the commands live in the `history` table, undo survives closing and reopening the project.
A command never stores codes: takes that leave the tree are tombstoned (their rows stay, marked with the
step that removed them), so undoing a delete brings back the exact rows. `do` is also `redo`, and an edit
is made by recording its command and then calling `do`, so the first run and every redo share one path.

History is linear: undo always reverts the newest done step, redo replays the oldest undone one, and a
new edit drops the undone steps (and purges the takes only they could bring back).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar, Protocol

from cocompose.song.codes import Codes
from cocompose.song.records import Conditioning, Node


class Editor(Protocol):  # cocompose.store.editor.TreeEditor
    def node(self, node_id: int) -> Node: ...
    def update(self, node: Node) -> None: ...
    def set_codes(self, node_id: int, codes: Codes) -> None: ...
    def move(self, node_id: int, new_parent_id: int) -> None: ...
    def set_current(self, node_id: int) -> None: ...
    def live_subtree(self, node_id: int) -> list[int]: ...
    def take_out(self, node_ids: list[int], seq: int) -> None: ...
    def bring_back(self, seq: int) -> None: ...


@dataclass(frozen=True)
class Command:
    label: ClassVar[str] = "Edit"

    def do(self, ed: Editor, seq: int) -> None:
        raise NotImplementedError

    def undo(self, ed: Editor, seq: int) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class AddTakes(Command):
    """New takes (inserted already taken out, marked with this step, so `do` just brings them back)."""

    node_ids: tuple[int, ...]
    label: ClassVar[str] = "Add takes"

    def do(self, ed: Editor, seq: int) -> None:
        ed.bring_back(seq)

    def undo(self, ed: Editor, seq: int) -> None:
        ed.take_out(list(self.node_ids), seq)


@dataclass(frozen=True)
class Pick(Command):
    before: int
    after: int
    label: ClassVar[str] = "Pick take"

    def do(self, ed: Editor, seq: int) -> None:
        ed.set_current(self.after)

    def undo(self, ed: Editor, seq: int) -> None:
        ed.set_current(self.before)


@dataclass(frozen=True)
class DeleteBranch(Command):
    node_id: int
    current_before: int
    current_after: int
    label: ClassVar[str] = "Delete branch"

    def do(self, ed: Editor, seq: int) -> None:
        ed.set_current(self.current_after)  # move off the branch before it leaves the tree
        ed.take_out(ed.live_subtree(self.node_id), seq)

    def undo(self, ed: Editor, seq: int) -> None:
        ed.bring_back(seq)
        ed.set_current(self.current_before)


@dataclass(frozen=True)
class SetHidden(Command):
    node_id: int
    was_hidden: bool
    hidden: bool
    current_before: int
    current_after: int
    label: ClassVar[str] = "Hide take"

    def do(self, ed: Editor, seq: int) -> None:
        ed.set_current(self.current_after)
        ed.update(_with(ed.node(self.node_id), hidden=self.hidden))

    def undo(self, ed: Editor, seq: int) -> None:
        ed.update(_with(ed.node(self.node_id), hidden=self.was_hidden))
        ed.set_current(self.current_before)


@dataclass(frozen=True)
class Rename(Command):
    node_id: int
    old: str
    new: str
    label: ClassVar[str] = "Rename take"

    def do(self, ed: Editor, seq: int) -> None:
        ed.update(_with(ed.node(self.node_id), name=self.new))

    def undo(self, ed: Editor, seq: int) -> None:
        ed.update(_with(ed.node(self.node_id), name=self.old))


@dataclass(frozen=True)
class SetConditioning(Command):
    """A conditioning change starting at a node (None = inherit from the parent again)."""

    node_id: int
    old: str | None  # Conditioning JSON
    new: str | None
    label: ClassVar[str] = "Change conditioning"

    def do(self, ed: Editor, seq: int) -> None:
        ed.update(_with(ed.node(self.node_id), conditioning=_conditioning(self.new)))

    def undo(self, ed: Editor, seq: int) -> None:
        ed.update(_with(ed.node(self.node_id), conditioning=_conditioning(self.old)))


@dataclass(frozen=True)
class Cut(Command):
    """Split a node at a code index: it keeps codes[:at]; `second_id` (inserted already taken out)
    holds codes[at:] and adopts the node's children, so every existing path still sounds the same."""

    node_id: int
    at: int
    second_id: int
    adopted: tuple[int, ...]
    current_before: int
    current_after: int
    label: ClassVar[str] = "Continue from here"

    def do(self, ed: Editor, seq: int) -> None:
        first, _ = ed.node(self.node_id).codes.split(self.at)
        ed.set_codes(self.node_id, first)
        ed.bring_back(seq)
        for child_id in self.adopted:
            ed.move(child_id, self.second_id)
        ed.set_current(self.current_after)

    def undo(self, ed: Editor, seq: int) -> None:
        for child_id in self.adopted:
            ed.move(child_id, self.node_id)
        whole = ed.node(self.node_id).codes + ed.node(self.second_id).codes
        ed.set_codes(self.node_id, whole)
        ed.set_current(self.current_before)
        ed.take_out([self.second_id], seq)


def _with(node: Node, **changes: object) -> Node:
    return replace(node, **changes)


def _conditioning(text: str | None) -> Conditioning | None:
    return Conditioning.from_json(text) if text else None


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls for cls in (AddTakes, Pick, DeleteBranch, SetHidden, Rename, SetConditioning, Cut)
}


def _encode(command: Command) -> str:
    return json.dumps(asdict(command), sort_keys=True)


def _decode(kind: str, payload: str) -> Command:
    cls = COMMANDS[kind]
    values = json.loads(payload)
    tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
    return cls(**{k: tuple(v) if k in tuples else v for k, v in values.items()})


class History:
    """The persisted undo/redo stacks. Every method runs inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def begin_step(self, command_kind: type[Command], label: str | None = None) -> int:
        """Drop the redo stack and reserve the seq of a new step (its payload is filled by `record`)."""
        self.drop_redo()
        cursor = self.conn.execute(
            "INSERT INTO history (kind, label, payload, created_at) VALUES (?, ?, '{}', ?)",
            (command_kind.__name__, label or command_kind.label, time.time()),
        )
        return int(cursor.lastrowid)

    def record(self, seq: int, command: Command) -> None:
        self.conn.execute("UPDATE history SET payload = ? WHERE seq = ?", (_encode(command), seq))

    def drop_redo(self) -> None:
        undone = [row[0] for row in self.conn.execute("SELECT seq FROM history WHERE undone = 1")]
        if undone:
            marks = ", ".join("?" * len(undone))
            # Takes removed by an undone step can only come back by redoing it, which is now impossible.
            self.conn.execute(f"DELETE FROM nodes WHERE deleted_by IN ({marks})", undone)
            self.conn.execute(f"DELETE FROM history WHERE seq IN ({marks})", undone)

    def _step(self, undone: bool) -> tuple[int, Command, str] | None:
        order = "ASC" if undone else "DESC"
        row = self.conn.execute(
            f"SELECT seq, kind, payload, label FROM history WHERE undone = ? ORDER BY seq {order} LIMIT 1",
            (int(undone),),
        ).fetchone()
        return (row[0], _decode(row[1], row[2]), row[3]) if row else None

    def undo_label(self) -> str | None:
        step = self._step(undone=False)
        return step[2] if step else None

    def redo_label(self) -> str | None:
        step = self._step(undone=True)
        return step[2] if step else None

    def undo(self, ed: Editor) -> str | None:
        step = self._step(undone=False)
        if step is None:
            return None
        seq, command, label = step
        command.undo(ed, seq)
        self.conn.execute("UPDATE history SET undone = 1 WHERE seq = ?", (seq,))
        return label

    def redo(self, ed: Editor) -> str | None:
        step = self._step(undone=True)
        if step is None:
            return None
        seq, command, label = step
        command.do(ed, seq)
        self.conn.execute("UPDATE history SET undone = 0 WHERE seq = ?", (seq,))
        return label
