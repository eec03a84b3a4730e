"""The engine service on a tiny model: reproducible seeds whatever the batch, streaming into the store,
priorities with preemption at window boundaries, cancel, pause and resume (which end as if never paused),
upsampling that resumes exactly, out-of-memory batch splitting, previews cached per take, and the
planner."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cocompose.service import (
    ComposeService,
    GenerateRequest,
    JobCancelled,
    PreviewRequest,
    SamplingParams,
    UpsampleRequest,
    plan_generation,
)
from cocompose.service.jobs import JobStateError
from cocompose.service.upsampling import resolve_stretch
from cocompose.song import Codes, Conditioning, ModelInfo, NodeState
from cocompose.store import Project
from engine.api import ComposeEngine, LabelSpec
from engine.prior.sampler import SamplingSettings
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


def wait_for(service, job_id: int, state: str, fraction: float = 0.0):
    """The first event of the job in `state` past `fraction` (events are read from the service's queue)."""
    for event in iter(lambda: service.events.get(timeout=TIMEOUT), None):
        if event.job_id == job_id and event.state == state and event.fraction >= fraction:
            return event
    raise AssertionError("unreachable")


def test_the_engine_goes_on_from_codes_drawn_before_whatever_the_batches(engine):
    spec, settings, history = (
        LabelSpec("Ada Tone", "rock", "", 30),
        SamplingSettings(1.0),
        np.zeros(10, np.int64),
    )

    def run(**kwargs) -> list[np.ndarray]:
        out = [np.asarray(d) for d in kwargs.get("drawn") or [np.zeros(0, np.int64)] * 3]
        for piece in engine.generate(history, 150, [5, 6, 7], spec, settings, **kwargs):
            for row, b in enumerate(piece.branches):
                out[b] = np.concatenate([out[b], piece.codes[row]])
        return out

    whole = run()
    # Stopped inside a later window, each branch at another point (as when batches were split).
    drawn = [whole[0][:100], whole[1][:75], whole[2][:150]]
    for got in (run(drawn=drawn), run(drawn=drawn, max_batch=2)):
        for a, b in zip(whole, got, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="at most 150 codes"):
        run(drawn=[whole[0], whole[1], np.zeros(151, np.int64)])


def test_a_paused_generation_draws_nothing_until_resumed_then_ends_as_if_never_paused(service):
    sampling = SamplingParams(temperature=0.9, top_k=20)
    request = GenerateRequest.branches(1, 2, 4.0, seed=21, sampling=sampling)
    expected = service.submit(request).wait(TIMEOUT)
    handle = service.submit(request)
    wait_for(service, handle.id, "running", 0.3)
    service.pause(handle.id)
    service.pause(handle.id)  # already pausing: nothing more happens
    paused = wait_for(service, handle.id, "paused")
    n_new = round(4.0 * service.engine.codes_per_second)
    held = [len(codes_of(service, i)) for i in handle.node_ids]
    assert 0.3 <= paused.fraction < 1 and all(0 < n < n_new for n in held) and not handle.done()
    assert service.read(lambda p: p.jobs()[-1].state) == "paused"
    # The worker is free meanwhile: another job runs to its end, and the paused one draws nothing.
    service.submit(GenerateRequest(1, 0.2, (99,), previews=False)).wait(TIMEOUT)
    assert [len(codes_of(service, i)) for i in handle.node_ids] == held
    takes = service.read(lambda p: [p.tree.node(i) for i in handle.node_ids])
    assert all(t.state is NodeState.IN_PROGRESS for t in takes)
    service.resume(handle.id)
    assert handle.wait(TIMEOUT) == handle.node_ids
    for a, b in zip(expected, handle.node_ids, strict=True):
        np.testing.assert_array_equal(codes_of(service, a), codes_of(service, b))
        assert service.read(lambda p, b=b: p.tree.node(b).state) is NodeState.DONE
        # The preview decoders were kept across the pause: the streamed preview is the unpaused one.
        # Where the pause lands sets the pieces the preview is decoded in, and convolutions over pieces
        # of other lengths round differently, so the audio is equal to float rounding (as a streamed
        # preview is to one decode: test_preview_stream), not bit for bit.
        first, second = (
            service.read(lambda p, n=n: p.preview(n, service.engine.decoder_hash)) for n in (a, b)
        )
        assert first[1].shape == second[1].shape
        np.testing.assert_allclose(first[1], second[1], atol=2e-5, rtol=0)
    assert service.read(lambda p: p.jobs()[-1].state) == "done"


def test_a_queued_job_paused_waits_aside_resumes_in_order_and_can_be_cancelled(service):
    long = service.submit(GenerateRequest(1, 3.0, (1,), previews=False))
    later = service.submit(GenerateRequest(1, 0.2, (2,), previews=False))
    dropped = service.submit(GenerateRequest(1, 0.2, (3,), previews=False))
    service.pause(later.id)
    service.pause(dropped.id)
    assert later.state == "paused" and service.read(lambda p: p.jobs()[1].state) == "paused"
    last = service.submit(GenerateRequest(1, 0.2, (4,), previews=False)).wait(TIMEOUT)
    assert long.done() and not later.done() and later.node_ids == ()  # it never started
    dropped.cancel()  # a paused job is cancelled without ever running
    with pytest.raises(JobCancelled):
        dropped.wait(TIMEOUT)
    service.resume(later.id)
    (take,) = later.wait(TIMEOUT)
    assert take > last[0] and len(codes_of(service, take)) == round(0.2 * service.engine.codes_per_second)
    with pytest.raises(JobStateError, match=f"Job {later.id} \\(generate\\) has already finished \\(done\\)"):
        service.pause(later.id)
    with pytest.raises(JobStateError, match="no job 999 to resume"):
        service.resume(999)
    running = service.submit(GenerateRequest(1, 3.0, (5,), previews=False))
    with pytest.raises(JobStateError, match="is not paused"):
        service.resume(running.id)
    running.cancel()
    with pytest.raises(JobCancelled):
        running.wait(TIMEOUT)
    states = ["done", "done", "cancelled", "done", "cancelled"]
    assert [j.state for j in service.read(lambda p: p.jobs())] == states


def test_cancelling_a_paused_generation_keeps_its_codes_and_marks_its_takes(service):
    handle = service.submit(GenerateRequest.branches(1, 2, 4.0, seed=11, previews=False))
    wait_for(service, handle.id, "running", 0.2)
    service.pause(handle.id)
    wait_for(service, handle.id, "paused")
    held = [codes_of(service, i) for i in handle.node_ids]
    handle.cancel()
    with pytest.raises(JobCancelled):
        handle.wait(TIMEOUT)
    takes = service.read(lambda p: [p.tree.node(i) for i in handle.node_ids])
    assert all(t.state is NodeState.INTERRUPTED for t in takes)
    for before, take in zip(held, takes, strict=True):
        assert len(before) > 0
        np.testing.assert_array_equal(before, take.codes.to_numpy())
    assert service.read(lambda p: p.jobs()[-1].state) == "cancelled"


def test_a_paused_upsampling_keeps_its_windows_and_resumes_to_the_same_result(tmp_path, engine):
    project = new_project(tmp_path / "a.cocompose", engine)
    with ComposeService(project, engine) as service:
        (take,) = service.submit(GenerateRequest(1, 0.5, (9,), previews=False)).wait(TIMEOUT)
        service.read(lambda p: p.pick(take))
    project.copy_to(tmp_path / "b.cocompose")
    request = UpsampleRequest(start_s=0.25, end_s=0.75, seed=4)
    stretch = resolve_stretch(project, engine, request, engine.min_upsample_codes())

    def saved() -> list[int]:
        return service.read(lambda p: [len(p.upsample_windows(take, stretch.key, level)) for level in (0, 1)])

    with ComposeService(project, engine) as service:
        handle = service.submit(request)
        wait_for(service, handle.id, "running", 0.5)
        service.pause(handle.id)
        wait_for(service, handle.id, "paused")
        windows = saved()
        assert sum(windows) > 0 and not handle.done()
        service.submit(GenerateRequest(take, 0.2, (3,), previews=False)).wait(TIMEOUT)
        assert saved() == windows, "a paused upsampling went on"
        service.resume(handle.id)
        resumed = handle.wait(TIMEOUT)
    project.close()
    other = Project.open(tmp_path / "b.cocompose")
    with ComposeService(other, engine) as service:
        whole = service.submit(request).wait(TIMEOUT)
    other.close()
    for a, b in zip(resumed, whole, strict=True):
        np.testing.assert_array_equal(a, b)


def test_closing_the_service_cancels_a_paused_job(tmp_path, engine):
    project = new_project(tmp_path / "song.cocompose", engine)
    with ComposeService(project, engine) as service:
        handle = service.submit(GenerateRequest(1, 4.0, (2,), previews=False))
        wait_for(service, handle.id, "running", 0.1)
        service.pause(handle.id)
        wait_for(service, handle.id, "paused")
    with pytest.raises(JobCancelled):
        handle.wait(0)
    assert project.jobs()[-1].state == "cancelled"
    assert project.tree.node(handle.node_ids[0]).state is NodeState.INTERRUPTED
    project.close()
