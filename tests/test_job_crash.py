"""Kill -9 in the middle of engine jobs, and fill the disk under them: nothing committed is lost.

A child process runs real jobs through the engine service on the tiny test model (generation, upsampling,
export) or runs `cocompose convert-jukebox` on the official-format fixture, and prints what it has
committed as it goes. We SIGKILL it at a random moment and require:

- generation: the project opens, integrity_check is ok, the tree invariants hold, every take the child
  reported (finished, or partly drawn) still holds exactly those codes, and every take in the file is a
  prefix of what its seed draws in an uninterrupted run (a finished take equals it);
- upsampling: every saved window equals the uninterrupted run's window, and resuming the killed job gives
  exactly the uninterrupted result;
- export: each output name holds nothing, the last reported file, or a complete new file (never a partial
  one); its sidecar likewise;
- conversion: every model whose settings file exists is byte-identical to an uninterrupted conversion,
  and converting again completes it.

A disk that fills (RLIMIT_FSIZE in a child) during project edits and during a conversion gives a clear
error, the project keeps every reported change, and no partial model is left.

COCOMPOSE_JOB_CRASH_TRIALS sets the kills per run, shared by the four kinds (default 8); the full campaign
in docs/RELIABILITY.md uses 200. Run with -s to see the per-kind figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocompose.service import ComposeService, GenerateRequest, RenderRequest, UpsampleRequest
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Codes, Conditioning, ModelInfo, NodeState, check_tree_invariants
from cocompose.store import Project
from engine.api import ComposeEngine
from tests.compose_model import write_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parent.parent
TRIALS = int(os.environ.get("COCOMPOSE_JOB_CRASH_TRIALS", "8"))
PER_KIND = max(1, TRIALS // 4)
GEN_SECONDS = 0.4
UPSAMPLE = UpsampleRequest(start_s=0.25, end_s=0.5, seed=3)
FORMATS = ("wav", "flac", "ogg", "mp3")
CONVERT_ONLY = ("vqvae", "prior_5b")
TIMEOUT = 120


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


# -- the world every trial starts from --------------------------------------------------------------
@dataclass(frozen=True)
class World:
    folder: Path
    bundle: Path
    engine: ComposeEngine
    base: Path  # a primed song with one finished take, picked

    def copy(self, name: str) -> Path:
        target = self.folder / name
        shutil.copyfile(self.base, target)
        return target


def base_nodes(path: Path) -> dict[int, tuple]:
    with Project.open(path) as project:
        return node_prints(project)


def node_prints(project: Project) -> dict[int, tuple]:
    return {
        n.id: (n.parent_id, n.codes.data, n.state.value, n.sampling and n.sampling.seed)
        for n in project.tree.nodes()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("job_crash")
    bundle = write_tiny_bundle(folder / "bundle")
    engine = ComposeEngine.load(bundle)
    t = np.arange(engine.sample_rate) / engine.sample_rate
    prime = engine.encode_prime(0.3 * np.sin(2 * np.pi * 220 * t), engine.sample_rate)
    info = ModelInfo(str(bundle), engine.model_hash, engine.sample_rate, engine.codes_per_second)
    base = folder / "base.cocompose"
    with Project.create(base, conditioning=Conditioning("Ada Tone", "rock"), planned_seconds=30,
                        model=info, prime_codes=Codes.of(prime)) as project:  # fmt: skip
        with ComposeService(project, engine) as service:
            (take,) = service.submit(GenerateRequest(1, 0.5, (1000,), previews=False)).wait(TIMEOUT)
            service.read(lambda p: p.pick(take))
    torch.set_num_threads(threads)
    return World(folder, bundle, engine, base)


def start_child(*args: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.test_job_crash", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    line = child.stdout.readline()
    assert line.startswith("ready"), f"the child did not start: {line!r}"
    return child


def kill_and_collect(child: subprocess.Popen, after: float) -> list[list[str]]:
    """SIGKILL `after` seconds from now; the lines the child finished printing, split into words."""
    time.sleep(after)
    finished_before = child.poll() is not None
    child.send_signal(signal.SIGKILL)
    output = child.communicate(timeout=TIMEOUT)[0]
    assert finished_before or child.returncode == -signal.SIGKILL
    return [line.split() for line in output.splitlines(keepends=True) if line.endswith("\n")]


def opened_sound(path: Path) -> Project:
    project = Project.open(path)
    assert project.integrity_problems() == []
    check_tree_invariants(project.tree)
    assert not [job for job in project.jobs() if job.state == "running"]  # reopening marks them
    return project


# -- children: run the job, print what is committed -------------------------------------------------
_say_lock = threading.Lock()


def say(*words) -> None:
    with _say_lock:  # the worker thread and the main thread both report; keep lines whole
        sys.stdout.write(" ".join(map(str, words)) + "\n")
        sys.stdout.flush()


def open_child_service(project_path: str, bundle: str, on_event=None) -> ComposeService:
    import torch

    torch.set_num_threads(1)
    engine = ComposeEngine.load(bundle)
    return ComposeService(Project.open(project_path), engine, on_event=on_event)


def child_generate(project_path: str, bundle: str) -> None:
    events = itertools.count()
    service: ComposeService | None = None

    def on_event(event) -> None:
        # Now and then, what the takes hold so far (all of it committed: the store commits each piece).
        if event.kind == "generate" and event.node_ids and next(events) % 3 == 0:
            codes = service.read(lambda p: [(i, p.tree.node(i).codes.data) for i in event.node_ids])
            for node_id, data in codes:
                say("part", node_id, len(data), sha(data))

    service = open_child_service(project_path, bundle, on_event)
    say("ready")
    for k in itertools.count():
        request = GenerateRequest(1, GEN_SECONDS, (2 * k, 2 * k + 1), previews=False)
        for node_id in service.submit(request).wait(TIMEOUT):
            data = service.read(lambda p, i=node_id: p.tree.node(i).codes.data)
            say("done", node_id, len(data), sha(data))


def child_upsample(project_path: str, bundle: str) -> None:
    service = open_child_service(project_path, bundle)
    say("ready")
    levels = service.submit(UPSAMPLE).wait(TIMEOUT)
    say("done", *(sha(level.tobytes()) for level in levels))
    service.close()


def child_export(project_path: str, bundle: str, out: str) -> None:
    from cocompose.export import ExportSettings, export_track

    service = open_child_service(project_path, bundle)
    say("ready")
    for i in itertools.count():
        audio, rate = service.submit(RenderRequest()).wait(TIMEOUT)
        target = Path(out) / f"song.{FORMATS[i % len(FORMATS)]}"
        settings = ExportSettings(loudness_lufs=-14.0 - i % 5)
        result = export_track(audio, rate, target, settings, sidecar_data={"i": i})
        say("exported", i, target.name, sha(target.read_bytes()), sha(result.sidecar_path.read_bytes()))


# -- generation -------------------------------------------------------------------------------------
class SeedReference:
    """The codes each seed draws from the root in an uninterrupted run, computed once per seed."""

    def __init__(self, world: World):
        self.world, self.codes = world, {}

    def __call__(self, seed: int) -> bytes:
        if seed not in self.codes:
            path = self.world.copy(f"reference-{seed}.cocompose")
            with Project.open(path) as project, ComposeService(project, self.world.engine) as service:
                (take,) = service.submit(GenerateRequest(1, GEN_SECONDS, (seed,), previews=False)).wait()
                self.codes[seed] = service.read(lambda p: p.tree.node(take).codes.data)
        return self.codes[seed]


def generation_trial(world: World, reference: SeedReference, trial: int, after: float) -> dict:
    path = world.copy(f"generate-{trial}.cocompose")
    before = base_nodes(path)
    lines = kill_and_collect(start_child("generate", str(path), str(world.bundle)), after)
    with opened_sound(path) as project:
        nodes = {n.id: n for n in project.tree.nodes()}
        assert {i: p for i, p in node_prints(project).items() if i in before} == before
        for kind, node_id, length, digest in lines:
            data = nodes[int(node_id)].codes.data
            assert sha(data[: int(length)]) == digest, f"take {node_id} lost codes it had committed"
            if kind == "done":
                assert len(data) == int(length) and nodes[int(node_id)].state is NodeState.DONE
        new = [n for i, n in nodes.items() if i not in before]
        for node in new:
            expected = reference(node.sampling.seed)
            assert node.parent_id == 1 and expected.startswith(node.codes.data), f"take {node.id} differs"
            assert node.state in (NodeState.DONE, NodeState.INTERRUPTED)
            if node.state is NodeState.DONE:
                assert node.codes.data == expected
    return {
        "takes": len(new),
        "interrupted": sum(n.state is NodeState.INTERRUPTED for n in new),
        "codes": sum(len(n.codes) for n in new),
    }


# -- upsampling -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpsampleReference:
    levels: list[np.ndarray]
    windows: dict[tuple[int, int], bytes]  # (level, window index) -> codes


def upsample_reference(world: World) -> UpsampleReference:
    path = world.copy("upsample-reference.cocompose")
    with Project.open(path) as project:
        with ComposeService(project, world.engine) as service:
            levels = service.submit(UPSAMPLE).wait(TIMEOUT)
        return UpsampleReference(levels, saved_windows(project, world.engine))


def saved_windows(project: Project, engine) -> dict[tuple[int, int], bytes]:
    stretch = resolve_stretch(project, engine, UPSAMPLE, engine.min_upsample_codes())
    out = {}
    for level in range(len(engine.bundle.upsamplers)):
        for window in project.upsample_windows(stretch.leaf_id, stretch.key, level):
            assert window.done
            out[level, window.window_index] = window.codes.data
    return out


def upsample_trial(world: World, reference: UpsampleReference, trial: int, after: float) -> dict:
    path = world.copy(f"upsample-{trial}.cocompose")
    before = base_nodes(path)
    kill_and_collect(start_child("upsample", str(path), str(world.bundle)), after)
    with opened_sound(path) as project:
        assert node_prints(project) == before
        windows = saved_windows(project, world.engine)
        for key, data in windows.items():
            assert data == reference.windows[key], f"window {key} differs from the uninterrupted run"
        with ComposeService(project, world.engine) as service:
            resumed = service.submit(UPSAMPLE).wait(TIMEOUT)
        for got, expected in zip(resumed, reference.levels, strict=True):
            np.testing.assert_array_equal(got, expected)
    return {"windows saved before the kill": len(windows), "of": len(reference.windows)}


# -- export -----------------------------------------------------------------------------------------
def export_trial(world: World, frames: int, trial: int, after: float) -> dict:
    path = world.copy(f"export-{trial}.cocompose")
    out = world.folder / f"exports-{trial}"
    out.mkdir()
    lines = kill_and_collect(start_child("export", str(path), str(world.bundle), str(out)), after)
    last = {name: (int(i), audio, side) for _, i, name, audio, side in lines}
    next_i = max((int(words[1]) for words in lines), default=-1) + 1
    in_flight = f"song.{FORMATS[next_i % len(FORMATS)]}"
    names = os.listdir(out)
    leftovers = [n for n in names if n.startswith(".")]
    assert all(n.endswith(".partial") for n in leftovers), leftovers  # hidden temporaries only
    for name in names:
        if name.startswith("."):
            continue
        track = name.removesuffix(".json")
        assert track in {f"song.{f}" for f in FORMATS}, name
        reported = last.get(track)
        data = (out / name).read_bytes()
        if name.endswith(".json"):
            i = json.loads(data)["track"]["i"]
            assert (reported and i == reported[0] and sha(data) == reported[2]) or (
                track == in_flight and i == next_i
            ), f"{name} is neither the last export nor the one under way"
        elif not (reported and sha(data) == reported[1]):
            assert name == in_flight, f"{name} changed but was not being exported"
            decoded, _ = sf.read(out / name)  # a new file must be complete
            assert abs(len(decoded) - frames) <= (2304 if name.endswith("mp3") else 0), name
    with opened_sound(path) as project:
        assert node_prints(project) == base_nodes(world.base)
    return {"exports finished": next_i, "hidden temporaries left": len(leftovers)}


# -- conversion -------------------------------------------------------------------------------------
def convert_command(out: Path) -> list[str]:
    from tests.reference import FIXTURE_DIR, IDS_DIR

    return ["convert-jukebox", str(FIXTURE_DIR / "models"), str(out), "--hparams",
            str(FIXTURE_DIR / "hparams.json"), "--ids", str(IDS_DIR), "--only", *CONVERT_ONLY]  # fmt: skip


def folder_files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def convert_in_process(out: Path) -> float:
    from cocompose.cli import main

    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(convert_command(out)) == 0
    return time.monotonic() - started


def convert_trial(world: World, reference: dict[str, bytes], trial: int, after: float) -> dict:
    from engine import checkpoint
    from engine.errors import CheckpointError

    out = world.folder / f"converted-{trial}"
    child = subprocess.Popen(
        [sys.executable, "-m", "cocompose.cli", *convert_command(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env(),
    )  # fmt: skip
    assert child.stdout.readline().startswith("converting")  # imports done, the work starts
    kill_and_collect(child, after)
    files = folder_files(out)
    hidden = [n for n in files if Path(n).name.startswith(".")]
    assert all(n.endswith(".tmp") for n in hidden), hidden
    complete = 0
    for name, data in files.items():
        if Path(name).name.startswith("."):
            continue
        assert data == reference[name], f"{name} differs from an uninterrupted conversion"
        if name.endswith(".safetensors") and name.removesuffix(".safetensors") + ".json" not in files:
            with pytest.raises(CheckpointError, match="settings not found"):  # looks incomplete, and is
                checkpoint.load_model(out / name)
        complete += name.endswith(".json") and "/" not in name
    convert_in_process(out)  # converting again finishes the job
    assert {n: d for n, d in folder_files(out).items() if not Path(n).name.startswith(".")} == reference
    return {"models complete at the kill": complete}


# -- the tests --------------------------------------------------------------------------------------
def summarise(kind: str, outcomes: list[dict]) -> None:
    totals = {key: sum(o[key] for o in outcomes) for key in outcomes[0]}
    print(f"\n{kind}: {len(outcomes)} kills; " + ", ".join(f"{k} {v}" for k, v in totals.items()))


def delays(seed: int, span: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, span) for _ in range(PER_KIND)]


def test_killing_generation_keeps_every_committed_code(world):
    reference = SeedReference(world)
    outcomes = [generation_trial(world, reference, t, d) for t, d in enumerate(delays(1, 1.5))]
    summarise("generation", outcomes)
    assert sum(o["codes"] for o in outcomes) > 0  # the kills landed after sampling had started


def test_killing_upsampling_keeps_its_windows_and_resumes_to_the_same_result(world):
    reference = upsample_reference(world)
    outcomes = [upsample_trial(world, reference, t, d) for t, d in enumerate(delays(2, 2.0))]
    summarise("upsampling", outcomes)


def test_killing_export_leaves_the_old_file_or_a_complete_new_one(world):
    with Project.open(world.copy("render.cocompose")) as project:
        with ComposeService(project, world.engine) as service:
            frames = len(service.submit(RenderRequest()).wait(TIMEOUT)[0])
    outcomes = [export_trial(world, frames, t, d) for t, d in enumerate(delays(3, 4.0))]
    summarise("export", outcomes)


def test_killing_conversion_leaves_no_model_that_looks_complete_but_is_not(world):
    reference_dir = world.folder / "converted-reference"
    span = convert_in_process(reference_dir)
    reference = folder_files(reference_dir)
    assert not [n for n in reference if Path(n).name.startswith(".")]
    outcomes = [convert_trial(world, reference, t, d) for t, d in enumerate(delays(4, 1.2 * span))]
    summarise("conversion", outcomes)


DISK_FULL_EDITS = """
import resource, signal, sys
from cocompose.song import Codes, Sampling
from cocompose.store import Project, ProjectError
from tests.test_project_crash import fingerprint

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
project = Project.open(sys.argv[1])
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    for step in range(10_000):
        runs = [Codes.of([(step * 7 + j) % 2048 for j in range(3000)])]
        project.add_takes(1, [Sampling(seed=step)], runs)
        print("saved", fingerprint(project), flush=True)
except ProjectError as exc:
    print("FULL", exc, flush=True)
try:
    project.rename(1, "after the disk filled")
    print("saved", fingerprint(project), flush=True)
except ProjectError as exc:
    print("STILL FULL", exc, flush=True)
project.close()
"""


def test_a_full_disk_during_edits_is_reported_and_keeps_every_saved_change(world):
    from tests.test_project_crash import fingerprint

    path = world.copy("disk-full.cocompose")
    limit = path.stat().st_size + 200_000
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DISK_FULL_EDITS), str(path), str(limit)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, env=child_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    full = [line for line in lines if line.startswith("FULL")]
    assert len(full) == 1 and "disk" in full[0] and "full" in full[0], run.stdout[-2000:]
    saved = [line.split()[1] for line in lines if line.startswith("saved")]
    assert len(saved) >= 3  # several edits fitted before the disk filled
    with opened_sound(path) as project:
        assert fingerprint(project) == saved[-1]


DISK_FULL_CONVERT = """
import resource, signal, sys
from cocompose.cli import main

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_during_conversion_is_a_clear_error_and_leaves_nothing(world):
    out = world.folder / "converted-full-disk"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DISK_FULL_CONVERT), "200000", *convert_command(out)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, env=child_env(),
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "disk" in run.stderr and "vqvae" in run.stderr and "Traceback" not in run.stderr
    assert folder_files(out) == {}  # no model, not even a hidden temporary


if __name__ == "__main__":
    {"generate": child_generate, "upsample": child_upsample, "export": child_export}[sys.argv[1]](
        *sys.argv[2:]
    )
