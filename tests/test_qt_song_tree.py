"""The Qt adapter mirrors the song tree through its events alone, and the takes view drives it by keyboard.

Qt's own QAbstractItemModelTester (Fatal mode: a broken signal aborts the run) watches the adapter, and
the view's filter on top of it, through hundreds of random project edits. After every edit the Qt model is
walked and compared with the Python tree (napari's `_assert_models_synced`): same children in the same
order, same text in every column, bold exactly on the current path, grey exactly under hidden takes.
A RepaintWatcher also checks that each such change was announced by a signal, not just readable.

A Fatal tester failure aborts pytest with no report: rerun with `-s --no-qt-log` to see Qt's message.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester

from cocompose.song import ArtistBlend, Codes, Conditioning, NodeState, Sampling
from cocompose.store import Project, ProjectError
from ui.qt_song_tree_model import HIDDEN_FOREGROUND, HIDDEN_ROLE, NODE_ID_ROLE, QtSongTreeModel
from ui.tree_view import TakesTreeView

pytestmark = pytest.mark.qt

BASE = Conditioning("Elvis Presley", "rock", "hello")
FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
STATE_TEXT = {"done": "done", "in_progress": "in progress", "interrupted": "interrupted"}
NAMES = ["", "verse", "chorus", "bridge ♪", "take again"]


def new_project(folder: str | Path) -> Project:
    return Project.create(Path(folder) / "song.cocompose", conditioning=BASE, planned_seconds=60)


def watched(model) -> None:
    """Qt's model checker on `model` for its whole life (parented, so it never outlives the model)."""
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal, model)


# -- what the tree should look like, written out from the Python tree alone -------------------------
def expected_rows(project: Project) -> list[tuple]:
    tree, rate = project.tree, project.song.model.codes_per_second

    def conditioning(node_id: int) -> str:
        c = tree.conditioning_at(node_id)
        artist = f"{c.artist} + {c.blend.weight:.0%} {c.blend.other_artist}" if c.blend else c.artist
        return f"{artist} / {c.genre}"

    def rows(parent_id: int | None) -> list[tuple]:
        return [
            (
                node.id,
                node.name or f"take {node.id}",
                f"{len(node.codes) / rate:.1f}",
                str(node.sampling.seed) if node.sampling else "",
                conditioning(node.id),
                STATE_TEXT[node.state],
                node.id in tree.current_path,
                any(tree.node(i).hidden for i in tree.path_to(node.id)),
                rows(node.id),
            )
            for node in tree.children(parent_id)
        ]

    return rows(None)


def qt_rows(model: QtSongTreeModel, parent: QModelIndex | None = None) -> list[tuple]:
    """The same shape read back through the Qt model, checking each index's parent on the way.

    Cells are read with model.data(), never index.data(): PySide6 6.12 on Python 3.11 drops a reference
    to None each time an empty QVariant comes back through C++ to Python, and thousands of reads of the
    (mostly empty) font and colour roles then crash the interpreter ("none_dealloc").
    """
    parent = parent or QModelIndex()
    found = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        assert model.parent(index) == parent
        font = model.data(index, Qt.ItemDataRole.FontRole)
        grey = model.data(index, Qt.ItemDataRole.ForegroundRole) == HIDDEN_FOREGROUND
        assert grey == model.data(index, HIDDEN_ROLE)
        cells = [model.index(row, column, parent) for column in range(model.columnCount(parent))]
        texts = [model.data(cell) for cell in cells]
        bold = font is not None and font.bold()
        found.append((model.data(index, NODE_ID_ROLE), *texts, bold, grey, qt_rows(model, index)))
    return found


def assert_models_synced(model: QtSongTreeModel, project: Project) -> None:
    assert qt_rows(model) == expected_rows(project)


class RepaintWatcher:
    """What a view that re-reads a cell only when told to would show: cells are read when rows arrive and
    again only when dataChanged covers their column and role. If it ever differs from the model, some
    change (a rename, the bold of the current path, grey under a hidden take) went unannounced."""

    ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ForegroundRole)

    def __init__(self, model: QtSongTreeModel) -> None:
        self.model, self.shown = model, {}
        model.dataChanged.connect(self._changed)
        model.rowsInserted.connect(self._arrived)
        model.modelReset.connect(lambda: self._arrived(QModelIndex(), 0, model.rowCount() - 1))
        self._arrived(QModelIndex(), 0, model.rowCount() - 1)

    def _read(self, index: QModelIndex, role: int) -> object:
        value = self.model.data(index, role)  # not index.data(): see qt_rows
        if role == Qt.ItemDataRole.FontRole:
            return value is not None and value.bold()
        return value == HIDDEN_FOREGROUND if role == Qt.ItemDataRole.ForegroundRole else value

    def _remember(self, parent: QModelIndex, row: int, columns: range, roles) -> None:
        node_id = self.model.data(self.model.index(row, 0, parent), NODE_ID_ROLE)
        for column in columns:
            cell = self.model.index(row, column, parent)
            for role in set(roles or self.ROLES) & set(self.ROLES):
                self.shown[node_id, column, role] = self._read(cell, role)

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: list) -> None:
        for row in range(top_left.row(), bottom_right.row() + 1):
            columns = range(top_left.column(), bottom_right.column() + 1)
            self._remember(top_left.parent(), row, columns, roles)

    def _arrived(self, parent: QModelIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            self._remember(parent, row, range(self.model.columnCount()), None)
            index = self.model.index(row, 0, parent)
            self._arrived(index, 0, self.model.rowCount(index) - 1)

    def assert_nothing_missed(self, parent: QModelIndex | None = None) -> None:
        parent = parent or QModelIndex()
        for row in range(self.model.rowCount(parent)):
            index = self.model.index(row, 0, parent)
            for column in range(self.model.columnCount()):
                for role in self.ROLES:
                    cell = self.model.index(row, column, parent)
                    node_id = self.model.data(index, NODE_ID_ROLE)
                    assert self.shown[node_id, column, role] == self._read(cell, role)
            self.assert_nothing_missed(index)


# -- random editing ---------------------------------------------------------------------------------
def random_codes(rng: random.Random) -> Codes:
    return Codes.of([rng.randrange(2048) for _ in range(rng.randint(1, 600))])


def random_edit(project: Project, rng: random.Random) -> str:
    """One edit chosen and aimed by `rng`; an edit the project refuses is fine (and must change nothing)."""
    tree = project.tree
    live = [node.id for node in tree.nodes()]
    any_node, not_root = rng.choice(live), rng.choice(live[1:] or live)
    growing = [node.id for node in tree.nodes() if node.state is NodeState.IN_PROGRESS]
    kind = rng.choices(
        ["add", "stream", "grow", "variations", "pick", "cut", "rename", "hide", "unhide", "conditioning",
         "delete", "undo", "redo"],
        weights=[8, 3, 4, 3, 6, 4, 4, 3, 2, 2, 3, 5, 3],
    )[0]  # fmt: skip
    seeds = [Sampling(seed=rng.randrange(2**31)) for _ in range(rng.randint(1, 3))]
    try:
        if kind == "add":
            project.add_takes(any_node, seeds, [random_codes(rng) for _ in seeds])
        elif kind == "stream":
            project.add_takes(any_node, seeds)  # empty, in progress: the sampler has just started
        elif kind == "grow" and growing:
            node_id = rng.choice(growing)
            project.append_codes(node_id, random_codes(rng))
            if rng.random() < 0.5:
                project.end_take(node_id, rng.choice([NodeState.DONE, NodeState.INTERRUPTED]))
        elif kind == "variations":
            project.add_variations(not_root, seeds, [random_codes(rng) for _ in seeds])
        elif kind == "pick":
            project.pick(any_node)
        elif kind == "cut":
            project.cut(any_node, rng.randint(1, max(1, len(tree.node(any_node).codes) - 1)))
        elif kind == "rename":
            project.rename(any_node, rng.choice(NAMES))
        elif kind in ("hide", "unhide"):
            project.set_hidden(not_root, kind == "hide")
        elif kind == "conditioning":
            blend = ArtistBlend("Aretha Franklin", rng.choice([0.25, 0.5])) if rng.random() < 0.5 else None
            duet = Conditioning("Nina Simone", "soul", "", blend)
            project.set_conditioning(not_root, rng.choice([None, duet]))  # None: inherit again
        elif kind == "delete":
            project.delete_branch(not_root)
        elif kind == "undo":
            project.undo()
        elif kind == "redo":
            project.redo()
    except ProjectError:
        return f"{kind} (refused)"
    return kind


@pytest.fixture
def project():
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as folder:
        opened = new_project(folder)
        yield opened
        opened.close()


def test_the_qt_model_mirrors_the_tree_through_a_seeded_random_editing_session(qtbot, project):
    model = QtSongTreeModel(project)
    watched(model)
    view = TakesTreeView(model)
    watched(view.model())  # the hidden-takes filter must also stay coherent on top of our signals
    qtbot.addWidget(view)
    view.show()
    watcher = RepaintWatcher(model)
    rng = random.Random(20240611)
    done = []
    for step in range(250):
        done.append(random_edit(project, rng))
        assert_models_synced(model, project)
        watcher.assert_nothing_missed()
        if step % 40 == 0:
            view.set_show_hidden(not view.show_hidden_action.isChecked())
            qtbot.wait(1)  # let the view lay out and paint through the real event loop
    assert len(project.tree) > 20, "the session should have grown a real tree"
    assert {"add", "cut", "undo", "redo", "delete", "hide", "pick"} <= set(done), done


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.integers(0, 2**32), min_size=1, max_size=25))
def test_any_sequence_of_edits_keeps_the_qt_model_in_step(qtbot, edits):
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as folder:
        project = new_project(folder)
        model = QtSongTreeModel(project)
        watched(model)
        for seed in edits:  # each edit is chosen by its own seed, so hypothesis can drop edits to shrink
            random_edit(project, random.Random(seed))
            assert_models_synced(model, project)
        project.close()


def test_a_reopened_project_shows_the_same_tree_in_a_fresh_model(qtbot, project):
    model = QtSongTreeModel(project)
    rng = random.Random(7)
    for _ in range(120):
        random_edit(project, rng)
    before = qt_rows(model)
    path = project.path
    project.close()
    # Reopening marks whatever was still being sampled as interrupted (docs/PROJECT-FORMAT.md).
    expected = repr(before).replace("'in progress'", "'interrupted'")

    reopened = Project.open(path)
    try:
        fresh = QtSongTreeModel(reopened)
        watched(fresh)
        assert repr(qt_rows(fresh)) == expected
        assert_models_synced(fresh, reopened)
        with qtbot.waitSignal(model.modelReset):  # the old model can switch to it too: one reset, no drift
            model.set_project(reopened)
        assert qt_rows(model) == qt_rows(fresh)
    finally:
        reopened.close()
