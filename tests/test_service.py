"""The engine service on a tiny model: reproducible seeds whatever the batch, streaming into the store,
priorities with preemption at window boundaries, cancel, upsampling that resumes exactly, out-of-memory
batch splitting, previews cached per take, and the planner."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cocompose.service import (
    ComposeService,
    GenerateRequest,
    JobCancelled,
    PreviewRequest,
    UpsampleRequest,
    plan_generation,
)
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Codes, Conditioning, ModelInfo, NodeState
from cocompose.store import Project
from engine.api import ComposeEngine
from tests.compose_model import write_tiny_bundle

TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return ComposeEngine.load(write_tiny_bundle(tmp_path_factory.mktemp("bundle")))


def new_project(path, engine) -> Project:
    t = np.arange(engine.sample_rate) / engine.sample_rate
    prime = engine.encode_prime(0.3 * np.sin(2 * np.pi * 220 * t), engine.sample_rate)
    info = ModelInfo(engine.name, engine.model_hash, engine.sample_rate, engine.codes_per_second)
    return Project.create(path, conditioning=Conditioning("Ada Tone", "rock"), planned_seconds=30,
                          model=info, prime_codes=Codes.of(prime))  # fmt: skip


@pytest.fixture
def service(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine)
    with ComposeService(project, engine) as service:
        yield service
    project.close()


def codes_of(service, node_id) -> np.ndarray:
    return service.read(lambda p: p.tree.node(node_id).codes.to_numpy())


def test_a_seed_gives_the_same_branch_in_any_batch(service):
    three = service.submit(GenerateRequest.branches(1, 3, 0.5, seed=40, previews=False)).wait(TIMEOUT)
    alone = service.submit(GenerateRequest(1, 0.5, (41,), previews=False)).wait(TIMEOUT)
    np.testing.assert_array_equal(codes_of(service, three[1]), codes_of(service, alone[0]))
    assert len(codes_of(service, three[0])) == round(0.5 * service.engine.codes_per_second)
    nodes = service.read(lambda p: [p.tree.node(i) for i in three])
    assert [n.sampling.seed for n in nodes] == [40, 41, 42] and {n.state for n in nodes} == {NodeState.DONE}
    assert [j.state for j in service.read(lambda p: p.jobs())] == ["done", "done"]


def test_a_branch_is_readable_while_it_is_still_being_sampled(tmp_path, engine):
    seen, go, snapshots = threading.Event(), threading.Event(), []
    project = new_project(tmp_path / "song.cocompose", engine)

    def on_event(event):
        if event.kind == "generate" and event.node_ids and event.fraction > 0.4 and not seen.is_set():
            seen.set()
            go.wait(TIMEOUT)  # hold the worker here while the test reads the file

    with ComposeService(project, engine, on_event=on_event) as service:
        handle = service.submit(GenerateRequest.branches(1, 2, 2.0, seed=1, previews=False))
        assert seen.wait(TIMEOUT)
        snapshots = service.read(lambda p: [p.tree.node(i) for i in handle.node_ids])
        go.set()
        handle.wait(TIMEOUT)
        final = service.read(lambda p: [p.tree.node(i) for i in handle.node_ids])
    project.close()
    assert all(n.state is NodeState.IN_PROGRESS and 0 < len(n.codes) for n in snapshots)
    assert all(
        n.state is NodeState.DONE and len(n.codes) == round(2 * engine.codes_per_second) for n in final
    )
    for partial, whole in zip(snapshots, final, strict=True):
        assert whole.codes.data.startswith(partial.codes.data)


def test_cancel_keeps_what_was_drawn_and_marks_it(service):
    handle = service.submit(GenerateRequest.branches(1, 2, 20.0, seed=3, previews=False))
    for event in iter(lambda: service.events.get(timeout=TIMEOUT), None):
        if event.job_id == handle.id and event.fraction > 0.05:
            handle.cancel()
            break
    with pytest.raises(JobCancelled):
        handle.wait(TIMEOUT)
    takes = service.read(lambda p: [p.tree.node(i) for i in handle.node_ids])
    assert all(t.state is NodeState.INTERRUPTED and 0 < len(t.codes) < 20 * 172 for t in takes)
    assert service.read(lambda p: p.jobs()[-1].state) == "cancelled"


def test_an_interactive_job_overtakes_a_running_upsampling(service):
    (take,) = service.submit(GenerateRequest(1, 0.2, (5,), previews=False)).wait(TIMEOUT)
    service.read(lambda p: p.pick(take))
    finished = []
    started = threading.Event()
    service.on_event = lambda e: (e.kind == "upsample" and e.fraction > 0 and started.set(),
                                  e.state in ("done", "failed") and finished.append(e.kind))  # fmt: skip
    upsampling = service.submit(UpsampleRequest(seed=2))
    assert started.wait(TIMEOUT)
    service.submit(GenerateRequest(take, 0.2, (6,), previews=False)).wait(TIMEOUT)
    assert not upsampling.done(), "the branches waited for the whole upsampling"
    levels = upsampling.wait(TIMEOUT)
    assert finished == ["generate", "upsample"]
    song = service.read(lambda p: len(p.tree.path_codes(take)))
    assert [len(c) for c in levels] == [16 * song, 4 * song]


def test_upsampling_resumes_after_a_cancel_and_equals_an_uninterrupted_run(tmp_path, engine):
    project = new_project(tmp_path / "a.cocompose", engine)
    with ComposeService(project, engine) as service:
        (take,) = service.submit(GenerateRequest(1, 0.5, (9,), previews=False)).wait(TIMEOUT)
        service.read(lambda p: p.pick(take))
    project.copy_to(tmp_path / "b.cocompose")
    request = UpsampleRequest(start_s=0.25, end_s=0.75, seed=4)

    def cancel_midway(event):
        if event.kind == "upsample" and event.fraction > 0.5:
            handle.cancel()

    with ComposeService(project, engine, on_event=cancel_midway) as service:
        handle = service.submit(request)
        with pytest.raises(JobCancelled):
            handle.wait(TIMEOUT)
    stretch = resolve_stretch(project, engine, request, engine.min_upsample_codes())
    assert 0 < len(project.upsample_windows(take, stretch.key, 0)) and project.jobs()[-1].state == "cancelled"
    with ComposeService(project, engine) as service:  # a restart: only the missing windows are sampled
        resumed = service.submit(request).wait(TIMEOUT)
    project.close()
    other = Project.open(tmp_path / "b.cocompose")
    with ComposeService(other, engine) as service:
        whole = service.submit(request).wait(TIMEOUT)
    other.close()
    for a, b in zip(resumed, whole, strict=True):
        np.testing.assert_array_equal(a, b)


class OutOfMemoryAbove:
    """A top prior that fails like a full GPU whenever it runs more than `limit` rows at once."""

    def __init__(self, prior, limit):
        self._prior, self._limit, self.failures = prior, limit, 0

    def extend(self, state, tokens):
        if tokens.shape[0] > self._limit:
            self.failures += 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return self._prior.extend(state, tokens)

    def __getattr__(self, name):
        return getattr(self._prior, name)


def test_out_of_memory_splits_the_batch_and_keeps_the_codes(service, monkeypatch):
    expected = service.submit(GenerateRequest.branches(1, 4, 0.4, seed=70, previews=False)).wait(TIMEOUT)
    wrapped = OutOfMemoryAbove(service.engine.bundle.top, 2)
    monkeypatch.setattr(service.engine.bundle, "top", wrapped)
    messages = []
    service.on_event = lambda e: messages.append(e.message)
    got = service.submit(GenerateRequest.branches(1, 4, 0.4, seed=70, previews=False)).wait(TIMEOUT)
    assert wrapped.failures >= 1 and service.max_batch == 2
    assert any("out of memory" in m for m in messages)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(codes_of(service, a), codes_of(service, b))


def test_previews_are_decoded_per_take_and_cached(service):
    ids = service.submit(GenerateRequest.branches(1, 2, 0.3, seed=8)).wait(TIMEOUT)
    audio, rate = service.submit(PreviewRequest(ids[0])).wait(TIMEOUT)
    hop = round(rate / service.engine.codes_per_second)
    assert rate == service.engine.sample_rate and len(audio) == len(codes_of(service, ids[0])) * hop
    cached = service.read(lambda p: p.preview(ids[1], service.engine.decoder_hash))
    assert cached is not None and cached[0] == rate


def test_planner_bounds_the_batch_by_memory_and_uses_the_measured_rate(service):
    engine = service.engine
    plan = plan_generation(engine, 8, 2.0)
    assert plan.batch_size == 8 and plan.est_seconds is None and plan.tokens == 8 * round(2 * 172.265625)
    budget = engine.weights_bytes() + 3 * engine.memory_per_branch()
    tight = plan_generation(engine, 8, 2.0, memory_budget=budget, seconds_per_step=0.01)
    assert tight.batch_size == 3 and tight.fits
    assert tight.est_seconds == pytest.approx(round(2 * 172.265625) * 3 * 0.01)
    with pytest.raises(ValueError, match="seconds must be more than 0"):
        plan_generation(engine, 2, -1)
