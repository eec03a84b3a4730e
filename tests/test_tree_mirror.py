"""The GUI's copy of the song tree (cocompose.tree_mirror) catches up with the project by diffing alone:
after any run of random edits (cuts, undo of cuts, deletes, hides, streams) one sync makes it equal to
the project's tree, and a Qt model watching the mirror stays consistent (Qt's Fatal model tester) and
shows exactly what a model on the project itself would."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass

import pytest
from PySide6.QtTest import QAbstractItemModelTester

from cocompose.song import SongInfo, SongTree, check_tree_invariants
from cocompose.tree_mirror import TreeSnapshot, sync
from tests.test_qt_song_tree import FAST_TMP, expected_rows, new_project, qt_rows, random_edit
from ui.qt_song_tree_model import QtSongTreeModel


@dataclass
class MirrorView:
    """What the Qt model reads of a project: its tree (here the mirror) and its song facts."""

    tree: SongTree
    song: SongInfo


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_sync_after_any_run_of_edits_makes_the_mirror_equal(tmp_path, seed):
    rng = random.Random(seed)
    with new_project(tmp_path) as project:
        mirror = SongTree()
        assert sync(mirror, TreeSnapshot.of(project.tree))
        assert not sync(mirror, TreeSnapshot.of(project.tree))  # nothing left to do
        for _ in range(60):
            for _ in range(rng.randint(1, 6)):
                random_edit(project, rng)
            sync(mirror, TreeSnapshot.of(project.tree))
            assert TreeSnapshot.of(mirror) == TreeSnapshot.of(project.tree)
            check_tree_invariants(mirror)


@pytest.mark.qt
def test_a_qt_model_on_the_mirror_shows_what_the_project_holds(qapp):
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as folder, new_project(folder) as project:
        mirror = SongTree()
        sync(mirror, TreeSnapshot.of(project.tree))
        model = QtSongTreeModel(MirrorView(mirror, project.song))
        QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal, model)
        for _ in range(80):
            for _ in range(rng.randint(1, 4)):
                random_edit(project, rng)
            sync(mirror, TreeSnapshot.of(project.tree))
            assert qt_rows(model) == expected_rows(project)
