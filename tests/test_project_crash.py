"""Kill -9 at random moments: nothing committed is ever lost, and the file always opens sound.

A child process runs a long, seeded, random editing session (takes, streaming appends, cuts, picks,
deletes, hides, renames, conditioning changes, undo, redo, reopening) and prints, after each committed
step, the step number and a fingerprint of the whole saved state. We SIGKILL it at a random moment, reopen
the file and require: it opens, integrity_check is ok, the tree invariants hold, and the state is exactly
the one after the last reported step, or after the step that follows it (committed but killed before it
could print). That next step's fingerprint comes from replaying the same seed in this process.

COCOMPOSE_CRASH_TRIALS sets the number of kills (default 30); raise it for a longer campaign.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cocompose.song import Codes, Conditioning, NodeState, Sampling, check_tree_invariants
from cocompose.store import Project, ProjectError

BASE = Conditioning("Nina Simone", "jazz", "my baby")
REPO = Path(__file__).resolve().parent.parent
TRIALS = int(os.environ.get("COCOMPOSE_CRASH_TRIALS", "30"))


def new_song(path: Path) -> Project:
    return Project.create(path, conditioning=BASE, planned_seconds=120)


def fingerprint(project: Project) -> str:
    """The saved state that matters: every live node (an in-progress take counts as interrupted, as
    reopening marks it) and the whole undo history. Creation times are left out: a replay differs there."""
    nodes = []
    for node in sorted(project.tree.nodes(), key=lambda n: n.id):
        state = NodeState.INTERRUPTED if node.state is NodeState.IN_PROGRESS else node.state
        nodes.append(
            (
                node.id,
                node.parent_id,
                node.codes.data.hex(),
                node.codes.dtype,
                repr(node.conditioning),
                repr(node.sampling),
                node.name,
                node.hidden,
                state.value,
            )
        )
    history = project._conn.execute("SELECT seq, kind, payload, undone FROM history ORDER BY seq").fetchall()
    text = json.dumps([nodes, project.tree.current_id, history])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def random_session(project: Project, seed: int) -> Iterator[Project]:
    """Endless seeded edits; yields the (possibly reopened) project after each committed step."""
    rng = random.Random(seed)
    streaming: list[int] = []
    while True:
        tree = project.tree
        live = sorted(node.id for node in tree.nodes())
        node_id = rng.choice(live)
        node = tree.node(node_id)
        streaming = [i for i in streaming if i in tree and tree.node(i).state is NodeState.IN_PROGRESS]
        visible = not any(tree.node(i).hidden for i in tree.path_to(node_id))
        roll = rng.random()
        try:
            if streaming and roll < 0.3:
                take = rng.choice(streaming)
                if rng.random() < 0.2:
                    project.end_take(take) if len(tree.node(take).codes) else project.append_codes(
                        take, Codes.of([1])
                    )
                else:
                    project.append_codes(
                        take, Codes.of([rng.randrange(2048) for _ in range(rng.randint(1, 400))])
                    )
            elif roll < 0.45:
                samplings = [Sampling(seed=rng.randrange(2**31)) for _ in range(rng.randint(1, 3))]
                if rng.random() < 0.5:
                    streaming += project.add_takes(node_id, samplings)
                else:
                    runs = [
                        Codes.of([rng.randrange(2048) for _ in range(rng.randint(1, 300))]) for _ in samplings
                    ]
                    project.add_takes(node_id, samplings, runs)
            elif roll < 0.52 and visible:
                project.pick(node_id)
            elif roll < 0.58 and len(node.codes) > 1 and node.state is not NodeState.IN_PROGRESS:
                project.cut(node_id, rng.randint(1, len(node.codes) - 1))
            elif roll < 0.63 and node.parent_id is not None:
                project.delete_branch(node_id)
            elif roll < 0.68 and node.parent_id is not None:
                project.set_hidden(node_id, not node.hidden)
            elif roll < 0.72:
                project.rename(node_id, f"take {rng.randrange(100)}")
            elif roll < 0.76:
                project.set_conditioning(node_id, Conditioning(rng.choice(["A", "B"]), "soul"))
            elif roll < 0.88:
                if project.undo() is None:
                    continue
            elif roll < 0.97:
                if project.redo() is None:
                    continue
            else:
                path = project.path
                project.close()
                project = Project.open(path)
                streaming = []  # reopening marks unfinished takes interrupted
        except ProjectError:
            continue  # an edit the rules refuse (e.g. continuing from a take still streaming)
        yield project


def child_main(path: str, seed: int) -> None:
    project = Project.open(path)
    print("ready", fingerprint(project), flush=True)
    for step, current in enumerate(random_session(project, seed)):
        # Only the step number, so the kill lands mostly inside edits, not in our bookkeeping; every 25th
        # step also carries the fingerprint, to prove the replay walks the same path as the child.
        print(step, fingerprint(current) if step % 25 == 0 else "-", flush=True)


def replay(seed: int, steps: int) -> list[str]:
    """Fingerprints before any step and after each of the first `steps`, on a fresh copy of the song."""
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None) as folder:
        project = new_song(Path(folder) / "replay.cocompose")
        prints = [fingerprint(project)]
        session = random_session(project, seed)
        for _ in range(steps):
            project = next(session)
            prints.append(fingerprint(project))
        project.close()
        return prints


def one_trial(folder: Path, seed: int, kill_after: float) -> tuple[int, str]:
    path = folder / f"crash-{seed}.cocompose"
    new_song(path).close()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.test_project_crash", str(path), str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().startswith("ready")
    time.sleep(kill_after)
    child.send_signal(signal.SIGKILL)
    output = child.communicate()[0]
    # A line cut short by the kill (no newline yet) was never reported.
    reported = [line.split() for line in output.splitlines(keepends=True) if line.endswith("\n")]
    expected = replay(seed, len(reported) + 1)
    for step, mark in reported:
        assert mark in ("-", expected[int(step) + 1]), f"seed {seed}: the replay differs at step {step}"

    with Project.open(path) as project:
        assert project.integrity_problems() == []
        check_tree_invariants(project.tree)
        found = fingerprint(project)
    last, following = expected[len(reported)], expected[len(reported) + 1]
    assert found in (last, following), f"seed {seed}: after {len(reported)} reported steps the file lost work"
    return len(reported), "next" if found == following and found != last else "last"


def test_killing_the_process_at_any_moment_loses_nothing_committed(tmp_path):
    rng = random.Random(20240611)
    outcomes = [one_trial(tmp_path, seed, rng.uniform(0.0, 0.4)) for seed in range(TRIALS)]
    steps = [n for n, _ in outcomes]
    print(
        f"\n{TRIALS} kills, {sum(steps)} committed steps reported, "
        f"{sum(o == 'next' for _, o in outcomes)} kills landed between a commit and its report"
    )
    assert max(steps) > 20  # the kills did land in the middle of real sessions


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]))
