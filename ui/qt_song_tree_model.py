"""The song tree as a Qt item model, kept in step by the tree's own events (STYLE habit 13).

Nothing here polls or rebuilds: each `*_about_to_be_*` event of the SongTree opens the matching
beginInsertRows / beginRemoveRows / beginMoveRows, and the past-tense twin closes it. Between the two the
SongTree still holds its old shape (it changes only after announcing), so every index Qt asks for during a
begin* is answered from the tree as it was, and after end* from the tree as it is. A full reset happens only
when a project is loaded. The pattern is napari's _qt/containers/_base_item_model.py.

An index's internal id is the node id: ids never change and are never reused, so persistent indexes (the
view's selection and current item) survive inserts, removals and moves without bookkeeping here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from cocompose.song import Conditioning, Node, NodeState, SongTree, TreeListener
from cocompose.store import Project, ProjectError

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    NAME = 0
    SECONDS = 1
    SEED = 2
    CONDITIONING = 3
    STATE = 4


HEADERS = {
    Column.NAME: "Take",
    Column.SECONDS: "Seconds",
    Column.SEED: "Seed",
    Column.CONDITIONING: "Artist / genre",
    Column.STATE: "State",
}
STATE_TEXT = {
    NodeState.DONE: "done",
    NodeState.IN_PROGRESS: "in progress",
    NodeState.INTERRUPTED: "interrupted",
}

NODE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
ON_CURRENT_PATH_ROLE = Qt.ItemDataRole.UserRole + 2
HIDDEN_ROLE = Qt.ItemDataRole.UserRole + 3  # the take or a take above it is hidden

HIDDEN_FOREGROUND = QBrush(QColor(140, 140, 140))
_LAST_COLUMN = max(Column)


def take_name(node: Node) -> str:
    """What the tree shows for a take: its name, or a stand-in so an unnamed row is never blank."""
    return node.name or f"take {node.id}"


def conditioning_text(conditioning: Conditioning) -> str:
    artist = conditioning.artist
    if conditioning.blend is not None:
        artist = f"{artist} + {conditioning.blend.weight:.0%} {conditioning.blend.other_artist}"
    tempo = "" if conditioning.tempo is None else f" / {conditioning.tempo.bpm:g} bpm"
    return f"{artist} / {conditioning.genre}{tempo}"


class QtSongTreeModel(QAbstractItemModel):
    """One row per take, nested as in the song; column 0 carries the tree structure."""

    # A rename typed into the view that the project refused; the text says why, for the status bar.
    editFailed = Signal(str)

    def __init__(self, project: Project | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._tree = SongTree()  # an empty stand-in until a project is loaded
        self._events = _TreeEvents(self)
        # beginMoveRows refuses a move that lands where it started; its endMoveRows must then be skipped.
        self._move_open = False
        if project is not None:
            self.set_project(project)

    # -- loading ---------------------------------------------------------------------------------
    @property
    def project(self) -> Project | None:
        return self._project

    def set_project(self, project: Project | None) -> None:
        """Show another project (or none). The one place the model is reset."""
        self.beginResetModel()
        if self._project is not None:
            self._tree.disconnect(self._events)
        self._project = project
        self._tree = project.tree if project is not None else SongTree()
        if project is not None:
            self._tree.connect(self._events)
        self.endResetModel()

    # -- reading ---------------------------------------------------------------------------------
    def node_at(self, index: AnyIndex) -> Node | None:
        if not index.isValid() or index.internalId() not in self._tree:
            return None
        return self._tree.node(index.internalId())

    def index_of(self, node_id: int, column: int = Column.NAME) -> QModelIndex:
        if node_id not in self._tree:
            return QModelIndex()
        return self.createIndex(self._tree.row(node_id), column, node_id)

    def _seconds(self, node: Node) -> float:
        rate = self._project.song.model.codes_per_second if self._project else 1.0
        return len(node.codes) / rate

    def _is_hidden(self, node: Node) -> bool:
        return any(self._tree.node(i).hidden for i in self._tree.path_to(node.id))

    # -- Qt overrides ------------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        parent_id = parent.internalId() if parent.isValid() else None
        return self.createIndex(row, column, self._tree.children(parent_id)[row].id)

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self.node_at(index)
        if node is None or node.parent_id is None:
            return QModelIndex()
        return self.index_of(node.parent_id)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:  # only column 0 has children, as Qt's tree views expect
            return 0
        if not parent.isValid():
            return len(self._tree.children(None))
        return len(self._tree.children(parent.internalId())) if parent.internalId() in self._tree else 0

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS.get(Column(section)) if 0 <= section < len(Column) else None
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == Column.NAME:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node_at(index)
        if node is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(node, Column(index.column()))
        if role == Qt.ItemDataRole.EditRole and index.column() == Column.NAME:
            return node.name  # edit the real name, not the "take N" stand-in
        if role == Qt.ItemDataRole.FontRole:
            if node.id in self._tree.current_path:
                bold = QFont()
                bold.setBold(True)
                return bold
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            return HIDDEN_FOREGROUND if self._is_hidden(node) else None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (Column.SECONDS, Column.SEED):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == NODE_ID_ROLE:
            return node.id
        if role == ON_CURRENT_PATH_ROLE:
            return node.id in self._tree.current_path
        if role == HIDDEN_ROLE:
            return self._is_hidden(node)
        return None

    def _display_text(self, node: Node, column: Column) -> str:
        if column == Column.NAME:
            return take_name(node)
        if column == Column.SECONDS:
            return f"{self._seconds(node):.1f}"
        if column == Column.SEED:
            return str(node.sampling.seed) if node.sampling is not None else ""
        if column == Column.CONDITIONING:
            return conditioning_text(self._tree.conditioning_at(node.id))
        return STATE_TEXT[node.state]

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """A rename from the view goes to the project; the tree's change event then repaints the row."""
        node = self.node_at(index)
        if node is None or role != Qt.ItemDataRole.EditRole or index.column() != Column.NAME:
            return False
        if self._project is None or str(value) == node.name:
            return False
        try:
            self._project.rename(node.id, str(value))
        except ProjectError as exc:
            self.editFailed.emit(str(exc))
            return False
        return True

    # -- tree events -> Qt signals (called by _TreeEvents) -----------------------------------------
    def _parent_index(self, parent_id: int | None) -> QModelIndex:
        return QModelIndex() if parent_id is None else self.index_of(parent_id)

    def _on_about_to_add(self, parent_id: int | None, row: int) -> None:
        self.beginInsertRows(self._parent_index(parent_id), row, row)

    def _on_added(self) -> None:
        self.endInsertRows()

    def _on_about_to_remove(self, node: Node, row: int) -> None:
        self.beginRemoveRows(self._parent_index(node.parent_id), row, row)

    def _on_removed(self) -> None:
        self.endRemoveRows()

    def _on_about_to_move(self, node: Node, row: int, new_parent_id: int, new_row: int) -> None:
        destination = new_row
        if new_parent_id == node.parent_id and new_row >= row:
            # The tree gives the row after taking the node out; Qt counts it before, with the node still
            # in place, so a move down its own parent's list lands one further on in Qt's numbering.
            destination = new_row + 1
        source, target = self._parent_index(node.parent_id), self.index_of(new_parent_id)
        self._move_open = self.beginMoveRows(source, row, row, target, destination)

    def _on_moved(self, node: Node) -> None:
        if self._move_open:
            self._move_open = False
            self.endMoveRows()
        # Inherited looks (greyed when hidden above, artist/genre) may differ under the new parent.
        self._subtree_changed(node.id)

    def _on_changed(self, old: Node, new: Node) -> None:
        if old.hidden != new.hidden or old.conditioning != new.conditioning:
            self._subtree_changed(new.id)  # both are inherited by everything below
        else:
            self._row_changed(new.id)

    def _on_current_path_changed(self, old_path: tuple[int, ...], new_path: tuple[int, ...]) -> None:
        # Only rows that joined or left the path change weight; a removed node has no row to repaint.
        for node_id in sorted(set(old_path) ^ set(new_path)):
            if node_id in self._tree:
                self._row_changed(node_id, [Qt.ItemDataRole.FontRole, ON_CURRENT_PATH_ROLE])

    def _row_changed(self, node_id: int, roles: list[int] | None = None) -> None:
        row = self._tree.row(node_id)
        first, last = self.createIndex(row, 0, node_id), self.createIndex(row, _LAST_COLUMN, node_id)
        self.dataChanged.emit(first, last, roles or [])

    def _subtree_changed(self, node_id: int) -> None:
        """The node's row and every row below it: one signal per parent, spanning all its children."""
        self._row_changed(node_id)
        for parent_id in self._tree.subtree_ids(node_id):
            children = self._tree.children(parent_id)
            if children:
                parent = self.index_of(parent_id)
                first = self.index(0, 0, parent)
                last = self.index(len(children) - 1, _LAST_COLUMN, parent)
                self.dataChanged.emit(first, last, [])


class _TreeEvents(TreeListener):
    """Forwards SongTree events to the model; a separate object keeps Qt's and the tree's names apart."""

    def __init__(self, model: QtSongTreeModel) -> None:
        self._model = model

    def node_about_to_be_added(self, parent_id: int | None, row: int) -> None:
        self._model._on_about_to_add(parent_id, row)

    def node_added(self, node: Node, row: int) -> None:
        self._model._on_added()

    def node_about_to_be_removed(self, node: Node, row: int) -> None:
        self._model._on_about_to_remove(node, row)

    def node_removed(self, node: Node, row: int) -> None:
        self._model._on_removed()

    def node_about_to_be_moved(self, node: Node, row: int, new_parent_id: int, new_row: int) -> None:
        self._model._on_about_to_move(node, row, new_parent_id, new_row)

    def node_moved(self, node: Node, row: int) -> None:
        self._model._on_moved(node)

    def node_changed(self, old: Node, new: Node) -> None:
        self._model._on_changed(old, new)

    def current_path_changed(self, old_path: tuple[int, ...], new_path: tuple[int, ...]) -> None:
        self._model._on_current_path_changed(old_path, new_path)
