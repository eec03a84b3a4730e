"""The tree of takes as a widget: where the musician walks the song's branches and picks favourites.

The keyboard is the main way in, since the musician is listening, not looking: the arrows walk the tree
(QTreeView's own Up/Down/Left/Right), Enter asks for the take under the cursor to become the song, and F2
renames it. Picking is only requested here (`pickRequested`): whoever owns the project decides, so the
view never writes to the file behind the window's back. A rename does go straight through the model,
because setData is Qt's one road for in-place edits and the project makes it undoable.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QTreeView, QWidget

from ui.qt_song_tree_model import HIDDEN_ROLE, NODE_ID_ROLE, Column, QtSongTreeModel

ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class HiddenTakesFilter(QSortFilterProxyModel):
    """Leaves out hidden takes (and so, as Qt drops a filtered row's children, everything after them)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._show_hidden = False

    @property
    def show_hidden(self) -> bool:
        return self._show_hidden

    def set_show_hidden(self, shown: bool) -> None:
        if shown != self._show_hidden:
            # Qt 6.10's replacement for invalidateRowsFilter(): bracket the change, rows only.
            self.beginFilterChange()
            self._show_hidden = shown
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self._show_hidden:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        return not index.data(HIDDEN_ROLE)


class TakesTreeView(QTreeView):
    """A QTreeView over a QtSongTreeModel, through a filter that can hide the hidden takes."""

    pickRequested = Signal(int)  # node id of the take the musician chose with Enter

    def __init__(self, model: QtSongTreeModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = model
        self._filter = HiddenTakesFilter(self)
        self._filter.setSourceModel(model)
        self.setModel(self._filter)

        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # F2 is handled below so it renames from any column; no double-click rename while auditioning.
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setUniformRowHeights(True)  # one line per take; lets Qt skip measuring every row
        self.setAllColumnsShowFocus(True)
        # Starting widths from the font: a stretched name column would be squeezed to nothing by the other
        # columns in a narrow pane, and deep branches indent it further. The pane scrolls sideways instead.
        self.setIndentation(14)
        header, advance = self.header(), self.fontMetrics().horizontalAdvance
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(advance("take 00") + 8)
        for column, sample in ((Column.NAME, "take 00 (an edited name)"), (Column.SECONDS, "Seconds"),
                               (Column.SEED, "0000000000"), (Column.CONDITIONING, "the_artist / genre"),
                               (Column.STATE, "in progress")):  # fmt: skip
            header.resizeSection(column, advance(sample) + 24)

        # A checkable action, so the same toggle can sit in a menu, a toolbar and the context menu.
        self.show_hidden_action = QAction("Show hidden takes", self)
        self.show_hidden_action.setCheckable(True)
        self.show_hidden_action.toggled.connect(self._filter.set_show_hidden)
        self.addAction(self.show_hidden_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        # New takes are what the musician wants to hear next, so never leave them folded away.
        self._filter.rowsInserted.connect(self._expand_inserted)
        self._filter.modelReset.connect(self._expand_branches)
        self._expand_branches()

    @property
    def song_model(self) -> QtSongTreeModel:
        return self._source

    def set_show_hidden(self, shown: bool) -> None:
        self.show_hidden_action.setChecked(shown)

    def node_id_at(self, index: QModelIndex | QPersistentModelIndex) -> int | None:
        node_id = index.data(NODE_ID_ROLE) if index.isValid() else None
        return int(node_id) if node_id is not None else None

    def index_of(self, node_id: int, column: int = Column.NAME) -> QModelIndex:
        """The view's index for a take; invalid when the take is filtered out or gone."""
        return self._filter.mapFromSource(self._source.index_of(node_id, column))

    def select_node(self, node_id: int) -> None:
        index = self.index_of(node_id)
        if index.isValid():
            self.setCurrentIndex(index)
            self.scrollTo(index)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in ENTER_KEYS and self.state() != QAbstractItemView.State.EditingState:
            node_id = self.node_id_at(self.currentIndex())
            if node_id is not None:
                self.pickRequested.emit(node_id)
            event.accept()
            return
        if event.key() == Qt.Key.Key_F2 and self.currentIndex().isValid():
            self.edit(self.currentIndex().siblingAtColumn(Column.NAME))
            event.accept()
            return
        super().keyPressEvent(event)

    def _expand_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            self.expand(parent)
        for row in range(first, last + 1):
            inserted = self._filter.index(row, 0, parent)
            if self._filter.hasChildren(inserted):
                self.expand(inserted)
                self._expand_branches(inserted)

    def _expand_branches(self, parent: QModelIndex | None = None) -> None:
        """Open every take that has children below `parent`. Not expandAll(): it marks leaves open too,
        and an "open" leaf swallows the first Left key press instead of stepping up to its parent."""
        parent = parent or QModelIndex()
        for row in range(self._filter.rowCount(parent)):
            index = self._filter.index(row, 0, parent)
            if self._filter.hasChildren(index):
                self.expand(index)
                self._expand_branches(index)
