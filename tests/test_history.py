"""Undo/redo: every edit reverts exactly, history survives reopening, and a new edit drops the redo stack.

The stateful test drives a real project file through random edits, undos, redos and reopenings, and after
every step checks the tree invariants, that each path still sounds as sampled, that the in-memory tree
equals the file, and that an event-fed mirror (the Qt adapter's view) equals the tree.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cocompose.song import Codes, Conditioning, Sampling, SongTree, check_tree_invariants
from cocompose.store import Project, ProjectError
from cocompose.store.rows import load_live_nodes
from tests.test_song_tree import TreeMirror

BASE = Conditioning("Elvis Presley", "rock", "hello")
# fsync on tmpfs is free; the crash test measures the real disk. Same code path either way.
FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def snapshot(tree: SongTree) -> tuple:
    return tuple(sorted(tree.nodes(), key=lambda n: n.id)), tree.current_id


def new_project(folder: str | Path) -> Project:
    return Project.create(Path(folder) / "song.cocompose", conditioning=BASE, planned_seconds=60)


codes_runs = st.lists(st.integers(0, 2047), min_size=1, max_size=6).map(Codes.of)


class EditSession(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory(dir=FAST_TMP)
        self.project = new_project(self.folder.name)
        self.mirror = TreeMirror(self.project.tree)
        self.sounds = {1: []}  # node id -> the codes from the song's start to the node's end, as sampled
        self.undo_states: list[tuple] = []  # (tree snapshot, sounds) before each done edit
        self.redo_states: list[tuple] = []

    def teardown(self) -> None:
        self.project.close()
        self.folder.cleanup()

    def state(self) -> tuple:
        return snapshot(self.project.tree), dict(self.sounds)

    def live(self, data, visible_path: bool = False) -> int:
        tree = self.project.tree
        ids = [n.id for n in tree.nodes()]
        if visible_path:
            ids = [i for i in ids if not any(tree.node(j).hidden for j in tree.path_to(i))]
        return data.draw(st.sampled_from(sorted(ids)))

    def edit(self, action) -> None:
        before = self.state()
        action()
        self.undo_states.append(before)
        self.redo_states.clear()

    @rule(data=st.data(), runs=st.lists(codes_runs, min_size=1, max_size=3), seed=st.integers(0, 2**31))
    def add_takes(self, data, runs, seed):
        parent = self.live(data)

        def action():
            ids = self.project.add_takes(parent, [Sampling(seed=seed + i) for i in range(len(runs))], runs)
            for node_id, run in zip(ids, runs, strict=True):
                self.sounds[node_id] = self.sounds[parent] + run.tolist()

        self.edit(action)

    @rule(data=st.data())
    def pick(self, data):
        node_id = self.live(data, visible_path=True)
        self.edit(lambda: self.project.pick(node_id))

    @rule(data=st.data(), fraction=st.floats(0, 1))
    def cut(self, data, fraction):
        node_id = self.live(data)
        length = len(self.project.tree.node(node_id).codes)
        if length < 2:
            with pytest.raises(ProjectError, match="inside the take"):
                self.project.cut(node_id, 1)
            return
        at = 1 + int(fraction * (length - 2))

        def action():
            second = self.project.cut(node_id, at)
            self.sounds[second] = self.sounds[node_id]
            self.sounds[node_id] = self.sounds[node_id][: len(self.sounds[node_id]) - (length - at)]

        self.edit(action)

    @rule(data=st.data(), artist=st.sampled_from(["Aretha Franklin", "Nina Simone", None]))
    def change_conditioning(self, data, artist):
        node_id = self.live(data)
        conditioning = Conditioning(artist, "soul") if artist else None
        if conditioning is None and node_id == 1:
            with pytest.raises(ProjectError, match="must keep"):
                self.project.set_conditioning(node_id, None)
            return
        self.edit(lambda: self.project.set_conditioning(node_id, conditioning))

    @rule(data=st.data(), name=st.text(max_size=8))
    def rename(self, data, name):
        node_id = self.live(data)
        self.edit(lambda: self.project.rename(node_id, name))

    @rule(data=st.data(), hidden=st.booleans())
    def hide_or_show(self, data, hidden):
        node_id = self.live(data)
        if node_id == 1 and hidden:
            with pytest.raises(ProjectError, match="cannot be hidden"):
                self.project.set_hidden(node_id, True)
            return
        self.edit(lambda: self.project.set_hidden(node_id, hidden))

    @rule(data=st.data())
    def delete(self, data):
        node_id = self.live(data)
        if node_id == 1:
            with pytest.raises(ProjectError, match="cannot be deleted"):
                self.project.delete_branch(node_id)
            return
        self.edit(lambda: self.project.delete_branch(node_id))

    @precondition(lambda self: self.undo_states)
    @rule()
    def undo(self):
        now = self.state()
        assert self.project.undo() is not None
        tree_state, self.sounds = self.undo_states.pop()
        assert snapshot(self.project.tree) == tree_state
        self.redo_states.append(now)

    @precondition(lambda self: self.redo_states)
    @rule()
    def redo(self):
        now = self.state()
        assert self.project.redo() is not None
        tree_state, self.sounds = self.redo_states.pop()
        assert snapshot(self.project.tree) == tree_state
        self.undo_states.append(now)

    @rule()
    def reopen(self):
        before = snapshot(self.project.tree)
        path = self.project.path
        self.project.close()
        self.project = Project.open(path)
        self.mirror = TreeMirror(self.project.tree)
        assert snapshot(self.project.tree) == before

    @invariant()
    def everything_agrees(self):
        tree = self.project.tree
        check_tree_invariants(tree)
        for node in tree.nodes():
            assert tree.path_codes(node.id).tolist() == self.sounds[node.id], node.id
        assert sorted(load_live_nodes(self.project._conn), key=lambda n: n.id) == list(snapshot(tree)[0])
        self.mirror.assert_matches_tree()
        assert (self.project.undo_label is not None) == bool(self.undo_states)
        assert (self.project.redo_label is not None) == bool(self.redo_states)


EditSession.TestCase.settings = settings(
    max_examples=int(os.environ.get("COCOMPOSE_HISTORY_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_edit_sessions = EditSession.TestCase


def test_undoing_n_edits_then_redoing_them_across_a_reopen_gives_back_each_state(tmp_path):
    project = new_project(tmp_path)
    states = [snapshot(project.tree)]
    a, b = project.add_takes(1, [Sampling(seed=1), Sampling(seed=2)], [Codes.of(range(10)), Codes.of([7])])
    states.append(snapshot(project.tree))
    edits = [
        lambda: project.add_takes(a, [Sampling(seed=3)], [Codes.of([1, 2])]),
        lambda: project.pick(a + 2),
        lambda: project.cut(a, 4),
        lambda: project.set_conditioning(b, Conditioning("Aretha Franklin", "soul")),
        lambda: project.rename(a, "intro"),
        lambda: project.set_hidden(a, True),
        lambda: project.set_hidden(a, False),
        lambda: project.delete_branch(a),
        lambda: project.add_variations(b, [Sampling(seed=4)], [Codes.of([3])]),
    ]
    for edit in edits:
        edit()
        states.append(snapshot(project.tree))
    path = project.path
    for expected in reversed(states[:-1]):
        project.undo()
        if expected == states[4]:  # halfway: close and reopen, history comes with the file
            project.close()
            project = Project.open(path)
        assert snapshot(project.tree) == expected
    assert project.undo() is None
    for expected in states[1:]:
        project.redo()
        assert snapshot(project.tree) == expected
    assert project.redo() is None
    project.close()


def test_a_primed_song_keeps_the_prime_codes_at_its_root_and_the_audio_as_a_blob(tmp_path):
    prime = Codes.of(range(100))
    with Project.create(
        tmp_path / "primed.cocompose",
        conditioning=BASE,
        planned_seconds=30,
        prime_codes=prime,
        prime_audio=b"RIFF....WAVE",
        prime_audio_name="riff.wav",
    ) as project:
        assert project.tree.root.codes == prime and project.song.prime_audio_blob is not None
        second = project.cut(1, 60)  # continue from inside the prime
        assert project.tree.path_codes(second) == prime
        blob = project._conn.execute("SELECT original_name, data FROM blobs").fetchone()
        assert blob == ("riff.wav", b"RIFF....WAVE")
