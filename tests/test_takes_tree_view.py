"""The takes view: the keyboard walks and picks, F2 renames into the file, bold and grey mean what they say.

Each test drives a real, shown TakesTreeView (offscreen) over a QtSongTreeModel on a real project file.
"""

from __future__ import annotations

import tempfile

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QLineEdit

from cocompose.song import Codes, Sampling
from cocompose.store import Project
from tests.test_qt_song_tree import FAST_TMP, assert_models_synced, new_project, watched
from ui.qt_song_tree_model import HIDDEN_FOREGROUND, QtSongTreeModel
from ui.tree_view import TakesTreeView

pytestmark = pytest.mark.qt


@pytest.fixture
def small_song():
    """1 (start) -> 2 -> 4, and 1 -> 3; the song is 1-2-4."""
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as folder:
        project = new_project(folder)
        yield project, _grow_small_song(project)
        project.close()


def _grow_small_song(project: Project) -> tuple[int, int, int]:
    two, three = project.add_takes(1, [Sampling(11), Sampling(12)], [Codes.of(range(9)), Codes.of(range(5))])
    (four,) = project.add_takes(two, [Sampling(13)], [Codes.of(range(7))])
    project.pick(four)
    return two, three, four


@pytest.fixture
def view(qtbot, small_song):
    project, _ = small_song
    model = QtSongTreeModel(project)
    watched(model)
    shown = TakesTreeView(model)
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitExposed(shown)
    shown.setFocus()
    return shown


def seen_in_view(view: TakesTreeView, node_id: int, role: int) -> object:
    """A take's data as the view's row shows it, read from the source (see qt_rows for why)."""
    return view.song_model.data(view.model().mapToSource(view.index_of(node_id)), role)


def bold_ids(view: TakesTreeView) -> set[int]:
    """The takes the view shows in bold, found by walking the view's own (filtered) rows."""
    found, stack = set(), [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(view.model().rowCount(parent)):
            index = view.model().index(row, 0, parent)
            node_id = view.node_id_at(index)
            if seen_in_view(view, node_id, Qt.ItemDataRole.FontRole) is not None:
                assert seen_in_view(view, node_id, Qt.ItemDataRole.FontRole).bold()
                found.add(node_id)
            stack.append(index)
    return found


def test_the_current_path_is_bold_and_enter_asks_to_pick_the_take_under_the_cursor(qtbot, view, small_song):
    project, (two, three, four) = small_song
    assert bold_ids(view) == {1, two, four}
    view.pickRequested.connect(project.pick)
    view.select_node(three)
    with qtbot.waitSignal(view.pickRequested) as picked:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert picked.args == [three]
    assert project.tree.current_path == (1, three)
    assert bold_ids(view) == {1, three}


def test_arrow_keys_walk_the_tree(qtbot, view, small_song):
    _, (two, three, four) = small_song
    view.select_node(1)
    walked = []
    for key in ("Down", "Right", "Left", "Left", "Down", "Up"):
        qtbot.keyClick(view, getattr(Qt.Key, f"Key_{key}"))
        walked.append(view.node_id_at(view.currentIndex()))
    # Right steps into an open take's first child; Left goes back up, then folds the take.
    assert walked == [two, four, two, two, three, two]
    assert not view.isExpanded(view.index_of(two))


def test_f2_renames_through_the_model_into_the_project_file(qtbot, view, small_song):
    project, (two, _, _) = small_song
    view.select_node(two)
    view.setCurrentIndex(view.index_of(two).siblingAtColumn(2))  # F2 renames whatever column is current
    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = view.findChild(QLineEdit)
    assert editor is not None and editor.text() == ""  # edits the real name, not the "take 2" stand-in
    qtbot.keyClicks(editor, "chorus")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: project.tree.node(two).name == "chorus")
    assert view.index_of(two).data() == "chorus"
    assert project.undo_label is not None  # a rename is an ordinary, undoable edit

    path = project.path
    project.close()
    with Project.open(path) as reopened:
        assert reopened.tree.node(two).name == "chorus"


def test_hidden_takes_are_filtered_out_or_shown_grey(qtbot, view, small_song):
    project, (two, _, four) = small_song
    project.set_hidden(two)
    assert not view.index_of(two).isValid() and not view.index_of(four).isValid()
    view.show_hidden_action.trigger()
    for node_id in (two, four):  # hiding a take hides what follows it, so both are grey
        assert seen_in_view(view, node_id, Qt.ItemDataRole.ForegroundRole) == HIDDEN_FOREGROUND
    project.undo()
    assert seen_in_view(view, four, Qt.ItemDataRole.ForegroundRole) is None
    assert_models_synced(view.song_model, project)
