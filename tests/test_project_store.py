"""The project file: creating, opening, refusing bad files untouched, migrations, copies, streaming takes,
jobs and caches."""

from __future__ import annotations

import os
import sqlite3
import stat
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cocompose.song import Codes, Conditioning, ModelInfo, NodeState, Sampling, check_tree_invariants
from cocompose.store import APPLICATION_ID, SCHEMA_VERSION, Project, ProjectError, UpsampleWindow
from cocompose.store.migrations import migrate
from tests.test_history import FAST_TMP, snapshot

BASE = Conditioning("Elvis Presley", "rock", "hello")


@pytest.fixture
def folder(tmp_path_factory) -> Path:
    return Path(tmp_path_factory.mktemp("projects", numbered=True)) if FAST_TMP is None else _shm_folder()


def _shm_folder() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(dir=FAST_TMP))


def make_song(path: Path) -> Project:
    project = Project.create(path, conditioning=BASE, planned_seconds=90, model=ModelInfo("5b_lyrics", "abc"))
    a, _ = project.add_takes(1, [Sampling(seed=1), Sampling(seed=2)], [Codes.of([1, 2, 3]), Codes.of([4])])
    project.add_takes(a, [Sampling(seed=3)], [Codes.of([5, 6])])
    project.pick(a)
    return project


def test_a_new_project_is_one_versioned_file_that_reopens_identically(folder):
    path = folder / "song.cocompose"
    project = make_song(path)
    before = snapshot(project.tree)
    project.close()
    assert sorted(os.listdir(folder)) == ["song.cocompose"]  # WAL folded back in on close
    header = path.read_bytes()[:100]
    assert struct.unpack(">I", header[68:72])[0] == APPLICATION_ID
    assert struct.unpack(">I", header[60:64])[0] == SCHEMA_VERSION
    with Project.open(path) as again:
        assert snapshot(again.tree) == before
        assert again.song.model == ModelInfo("5b_lyrics", "abc") and again.song.planned_seconds == 90
        assert again.integrity_problems() == []


def _refused_untouched(path: Path, message: str) -> None:
    before = path.read_bytes() if path.is_file() else None
    listing = sorted(os.listdir(path.parent))
    with pytest.raises(ProjectError, match=message):
        Project.open(path)
    if before is not None:
        assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == listing


def test_a_project_from_a_newer_version_is_refused_untouched_naming_both_versions(folder):
    path = folder / "future.cocompose"
    make_song(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    _refused_untouched(path, f"format {SCHEMA_VERSION + 1}.*format {SCHEMA_VERSION} and older")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b""), "not a Cocompose project, or it is damaged"),
        (lambda p: p.write_bytes(os.urandom(8192)), "not a Cocompose project, or it is damaged"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "damaged"),
        (lambda p: p.write_bytes(p.read_bytes()[:1024]), "damaged"),
        (lambda p: _scribble(p, offset=100), "damaged"),  # the schema page
    ],
    ids=["empty", "random-bytes", "truncated-half", "truncated-to-first-page", "scribbled-page"],
)
def test_a_damaged_file_is_refused_with_a_clear_error_and_left_as_it_was(folder, damage, message):
    path = folder / "damaged.cocompose"
    song = make_song(path)
    song.add_takes(2, [Sampling(seed=9)], [Codes.of(np.arange(3000) % 2048)])  # a few pages of codes
    song.close()
    damage(path)
    _refused_untouched(path, message)


def _scribble(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + 2000] = os.urandom(2000)
    path.write_bytes(bytes(data))


def test_another_programs_database_or_a_folder_or_nothing_is_refused(folder):
    other = folder / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    _refused_untouched(other, "another program")
    _refused_untouched(folder / "missing.cocompose", "no project")
    (folder / "dir.cocompose").mkdir()
    _refused_untouched(folder / "dir.cocompose", "folder")


def test_a_project_open_elsewhere_is_refused(folder):
    path = folder / "busy.cocompose"
    with make_song(path):
        with pytest.raises(ProjectError, match="open in another Cocompose window"):
            Project.open(path)


def test_read_only_files_and_folders_are_refused_not_forced(folder):
    path = folder / "locked.cocompose"
    make_song(path).close()
    path.chmod(stat.S_IRUSR)
    try:
        _refused_untouched(path, "is read-only")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _refused_untouched(path, "folder .* is read-only")
        with pytest.raises(ProjectError, match="read-only"):
            Project.create(folder / "new.cocompose", conditioning=BASE, planned_seconds=10)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_creating_over_an_existing_file_is_refused(folder):
    path = folder / "taken.cocompose"
    path.write_bytes(b"something precious")
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path, conditioning=BASE, planned_seconds=10)
    assert path.read_bytes() == b"something precious"


def test_migrations_run_in_order_and_a_failing_step_changes_nothing():
    def v0_to_v1(conn):
        conn.execute("CREATE TABLE takes (id INTEGER PRIMARY KEY)")

    def v1_to_v2(conn):
        conn.execute("ALTER TABLE takes ADD COLUMN rating INTEGER NOT NULL DEFAULT 0")

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    assert migrate(conn, target=1, migrations={0: v0_to_v1}) == [1]
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    assert migrate(conn, target=2, migrations={0: v0_to_v1, 1: v1_to_v2}) == [2]
    conn.execute("COMMIT")
    assert [row[1] for row in conn.execute("PRAGMA table_info(takes)")] == ["id", "rating"]

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk on fire")

    conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, target=3, migrations={2: broken})
    conn.execute("ROLLBACK")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    with pytest.raises(ProjectError, match="no upgrade is known"):
        migrate(conn, target=4, migrations={})


def test_save_as_copies_consistently_and_keeps_working_on_the_copy(folder):
    original = folder / "a.cocompose"
    project = make_song(original)
    copy_path = folder / "b.cocompose"
    project.save_as(copy_path)
    assert project.path == copy_path
    project.rename(2, "chorus")
    tree = snapshot(project.tree)
    project.close()
    with Project.open(original) as old, Project.open(copy_path) as new:
        assert old.tree.node(2).name == "" and snapshot(new.tree) == tree
        assert new.undo() == "Rename take" and old.undo() == "Pick take"


def test_streamed_takes_grow_and_a_crash_leaves_them_interrupted_as_far_as_they_got(folder):
    path = folder / "stream.cocompose"
    project = make_song(path)
    ids = project.add_takes(2, [Sampling(seed=10), Sampling(seed=11)])
    assert {project.tree.node(i).state for i in ids} == {NodeState.IN_PROGRESS}
    for chunk in ([1, 2], [3], [4, 5]):
        project.append_codes(ids[0], Codes.of(chunk))
    project.append_codes(ids[1], Codes.of([9]))
    project.end_take(ids[1])
    with pytest.raises(ProjectError, match="final"):
        project.append_codes(ids[1], Codes.of([1]))
    assert project.undo_label == "Add takes"  # appends are not history steps
    project._conn.close()  # as good as a crash: no clean shutdown
    with Project.open(path) as again:
        first = again.tree.node(ids[0])
        assert first.state is NodeState.INTERRUPTED and first.codes.tolist() == [1, 2, 3, 4, 5]
        assert again.tree.node(ids[1]).state is NodeState.DONE
        check_tree_invariants(again.tree)
        assert again.undo() == "Add takes" and ids[0] not in again.tree
        again.redo()
        assert again.tree.node(ids[0]).codes.tolist() == [1, 2, 3, 4, 5]


def test_deleting_and_undoing_restores_the_branch_exactly_and_a_new_edit_purges_redo(folder):
    project = make_song(folder / "d.cocompose")
    before = snapshot(project.tree)
    project.delete_branch(2)
    assert project.tree.current_path == (1,)
    project.undo()
    assert snapshot(project.tree) == before
    project.redo()
    project.undo()
    project.undo()  # the pick
    count = project._conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
    project.undo()  # the grandchild take, now only reachable by redo
    project.rename(3, "b")
    assert project.redo_label is None
    assert project._conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == count - 1


def test_a_failed_edit_changes_neither_the_file_nor_the_tree(folder, monkeypatch):
    project = make_song(folder / "f.cocompose")
    before = snapshot(project.tree)
    from cocompose.history import History

    def explode(*args):
        raise RuntimeError("power cut")

    monkeypatch.setattr(History, "record", explode)
    with pytest.raises(RuntimeError):
        project.cut(2, 1)
    assert snapshot(project.tree) == before and project.undo_label == "Pick take"
    assert project._conn.execute("SELECT count(*) FROM nodes").fetchone()[0] == 4


def test_jobs_previews_and_upsample_windows(folder):
    path = folder / "jobs.cocompose"
    project = make_song(path)
    job = project.add_job("upsample", node_id=3, detail={"levels": [1, 0]})
    project.update_job(job, state="running", progress=0.25)
    done_job = project.add_job("sample", node_id=2)
    project.update_job(done_job, state="done", progress=1.0)
    with pytest.raises(ValueError):
        project.update_job(job, state="exploded")
    audio = np.linspace(-1, 1, 100, dtype=np.float32)
    project.put_preview(2, "dec1", 22050, audio)
    window = UpsampleWindow(4, "abc", 0, 3, 1, 0, Codes.of([7, 8]), True)
    project.save_upsample_window(window)
    project.close()
    with Project.open(path) as again:
        jobs = {j.id: j for j in again.jobs()}
        assert jobs[job].state == "interrupted" and jobs[job].progress == 0.25
        assert jobs[job].detail == {"levels": [1, 0]} and jobs[done_job].state == "done"
        rate, cached = again.preview(2, "dec1")
        assert rate == 22050 and np.array_equal(cached, audio)
        assert again.preview(2, "dec2") is None
        assert again.upsample_windows(4, "abc", level=1) == [window]
        assert again.evict_previews() == 1 and again.preview(2, "dec1") is None


def test_a_paused_job_does_not_outlive_its_session_and_a_queued_one_stays_queued(folder):
    path = folder / "paused.cocompose"
    project = make_song(path)
    paused, queued = project.add_job("sample", node_id=2), project.add_job("upsample", node_id=3)
    project.update_job(paused, state="paused", progress=0.4)
    assert {j.id: j.state for j in project.jobs()} == {paused: "paused", queued: "queued"}
    project.close()
    with Project.open(path) as again:  # nothing can resume it: it is marked cut short, progress kept
        jobs = {j.id: j for j in again.jobs()}
        assert (jobs[paused].state, jobs[paused].progress) == ("interrupted", 0.4)
        assert jobs[queued].state == "queued"


def _as_version_2(path: Path) -> None:
    """Turn a project into the version-2 file the previous Cocompose wrote (its takes had no guidance
    column; nothing else differs)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ALTER TABLE nodes DROP COLUMN guidance")
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _as_version_1(path: Path) -> None:
    """Turn a project into the version-1 file Cocompose wrote before that (its jobs table had no
    'paused' state either)."""
    from cocompose.store.schema import SCHEMA_V1

    _as_version_2(path)
    jobs_v1 = next(s for s in SCHEMA_V1.split(";") if "CREATE TABLE jobs" in s).replace("jobs", "jobs_v1", 1)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(jobs_v1)
    conn.execute("INSERT INTO jobs_v1 SELECT * FROM jobs")
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'jobs_v1'")
    conn.execute("UPDATE sqlite_sequence SET name = 'jobs_v1' WHERE name = 'jobs'")
    conn.execute("DROP TABLE jobs")
    conn.execute("ALTER TABLE jobs_v1 RENAME TO jobs")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()


def test_a_version_1_project_is_upgraded_keeping_its_jobs_and_their_ids(folder):
    path = folder / "old.cocompose"
    project = make_song(path)
    first = project.add_job("sample", node_id=2, detail={"seed": 5})
    project.update_job(first, state="done", progress=1.0)
    second = project.add_job("upsample", node_id=3)
    gone = project.add_job("preview")
    project._write(lambda conn: conn.execute("DELETE FROM jobs WHERE id = ?", (gone,)))
    project.close()
    _as_version_1(path)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):  # the old table indeed refuses the new state
        conn.execute("UPDATE jobs SET state = 'paused' WHERE id = ?", (second,))
    conn.close()
    with Project.open(path) as again:
        assert again._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        jobs = {j.id: (j.kind, j.state, j.node_id, j.progress, j.detail) for j in again.jobs()}
        assert jobs == {
            first: ("sample", "done", 2, 1.0, {"seed": 5}),
            second: ("upsample", "queued", 3, 0.0, {}),
        }
        again.update_job(second, state="paused")
        assert again.jobs()[-1].state == "paused"
        assert again.add_job("sample") == gone + 1  # an id is never given twice, even one whose row is gone


def test_takes_keep_their_guidance_and_a_version_2_project_reads_as_sampled_without(folder):
    path = folder / "guided.cocompose"
    project = make_song(path)
    guided = Sampling(seed=9, temperature=0.9, top_k=5, model="m", guidance=2.5)
    (take,) = project.add_takes(1, [guided], [Codes.of([7, 8])])
    project.close()
    with Project.open(path) as again:
        assert again.tree.node(take).sampling == guided
    _as_version_2(path)
    with Project.open(path) as upgraded:
        assert upgraded._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert upgraded.tree.node(take).sampling == replace(guided, guidance=0.0)
        assert upgraded.tree.node(take).codes == Codes.of([7, 8])
        assert all(n.sampling is None or n.sampling.guidance == 0.0 for n in upgraded.tree.nodes())
        (newer,) = upgraded.add_takes(take, [guided], [Codes.of([1])])
        assert upgraded.tree.node(newer).sampling.guidance == 2.5
        assert upgraded.integrity_problems() == []


def test_the_command_line_creates_describes_and_edits_a_project(folder, capsys):
    from cocompose.cli import main

    path = str(folder / "cli.cocompose")
    assert (
        main(
            ["new", path, "--artist", "Elvis Presley", "--genre", "rock", "--lyrics", "hi", "--seconds", "30"]
        )
        == 0
    )
    with Project.open(path) as project:
        (take,) = project.add_takes(1, [Sampling(seed=42, model="5b_lyrics")], [Codes.of(range(689))])
        project.pick(take)
    assert main(["rename", path, str(take), "verse"]) == 0
    assert main(["hide", path, str(take)]) == 0
    assert main(["undo", path]) == 0
    capsys.readouterr()
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "current path: 1 > 2  (2.0 s)" in out and "undo: Rename take   redo: Hide take" in out
    assert '"verse" 689 codes 2.0 s seed 42' in out and "[from here: Elvis Presley, rock" in out
    assert main(["delete", path, "1"]) == 2
    assert "cannot be deleted" in capsys.readouterr().err
    assert main(["info", str(folder / "nothing.cocompose")]) == 2


def test_a_full_disk_refuses_the_edit_and_keeps_everything_before_it(folder):
    project = make_song(folder / "full.cocompose")
    before = snapshot(project.tree)
    pages = project._conn.execute("PRAGMA page_count").fetchone()[0]
    project._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite's stand-in for a full disk
    with pytest.raises(ProjectError, match="is full: the last change was not saved"):
        project.add_takes(2, [Sampling(seed=5)], [Codes.of(np.arange(20_000) % 2048)])
    assert snapshot(project.tree) == before and project.undo_label == "Pick take"
    project._conn.execute("PRAGMA max_page_count = 1073741823")
    project.add_takes(2, [Sampling(seed=5)], [Codes.of(np.arange(20_000) % 2048)])
    assert project.integrity_problems() == []
