"""The engine service: ONE plain worker thread owns the model and runs jobs from a priority queue.

Why one thread: the models are large and torch already uses every core; two jobs at once would only
share them. Interactive jobs (branches, previews) go before background ones (upsampling), and a running
background job steps aside at its next window boundary when an interactive one is waiting, so a click
waits at most about one window.

The project file is shared: the worker writes to it and the caller reads it, each under `self.lock`
(a Project is a single-connection object). `read(fn)` is the caller's way in. Events go to `on_event`
(called on the worker thread; the app forwards them to the GUI thread) and to the `events` queue.
Every job is recorded in the project's jobs table with its state and progress.

Pause works like a preemption the caller asked for: a running job stops at its next checkpoint (a drawn
code, for sampling and upsampling), keeping what it drew, and is held aside instead of going back to the
queue; a queued job is held aside when the worker reaches it. `resume` puts it back in its old place.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any

from cocompose.service.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    PAUSED,
    PREVIEW_AUDIO,
    QUEUED,
    RUNNING,
    EtaMeter,
    JobEvent,
    JobHandle,
    JobStateError,
    Preempted,
)
from cocompose.service.live_previews import LivePreviews
from cocompose.service.requests import Priority
from cocompose.store import Project
from engine.api import ComposeEngine
from engine.prior.sampler import Cancelled

STORE_PROGRESS_EVERY_S = 0.5  # each progress row is an fsynced commit; the UI gets every event anyway
_STOP = object()


class JobContext:
    """What a running job may do: touch the project (under the lock), report progress, check for a
    cancel or a waiting interactive job."""

    def __init__(self, service: ComposeService, handle: JobHandle):
        self.service, self.handle, self.engine = service, handle, service.engine
        self.meter = EtaMeter()
        self._stored_at = 0.0

    def store(self, fn: Callable[[Project], Any]) -> Any:
        return self.service.read(fn)

    def announce(self, node_ids: tuple[int, ...]) -> None:
        self.handle.node_ids = node_ids
        self.service._emit(self.handle, RUNNING, message="takes created")

    def progress(self, fraction: float, message: str = "") -> bool:
        """Report; returns False when the job should stop (what the sampler's callback wants)."""
        self.handle.fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if now - self._stored_at >= STORE_PROGRESS_EVERY_S:
            self._stored_at = now
            self.store(lambda p: p.update_job(self.handle.id, progress=self.handle.fraction))
        self.service._emit(self.handle, RUNNING, eta=self.meter.eta(self.handle.fraction), message=message)
        return not self.handle.should_stop

    def announce_audio(self, node_ids: tuple[int, ...]) -> None:
        """New preview audio of these takes is in `service.live` (takes still being sampled)."""
        event = JobEvent(self.handle.id, self.handle.kind, RUNNING, self.handle.fraction,
                         self.meter.eta(self.handle.fraction), PREVIEW_AUDIO, node_ids)  # fmt: skip
        self.service._send(event)

    def should_yield(self) -> bool:
        """True when this background job should step aside (an interactive job is waiting)."""
        return self.handle.request.priority > Priority.INTERACTIVE and self.service._interactive_waiting()


class ComposeService:
    def __init__(
        self,
        project: Project,
        engine: ComposeEngine,
        on_event: Callable[[JobEvent], None] | None = None,
    ):
        self.project, self.engine, self.on_event = project, engine, on_event
        self.lock = threading.RLock()
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self.live = LivePreviews()  # audio of takes still being sampled
        self.seconds_per_step: float | None = None  # measured by generation, for the planner
        self.max_batch: int | None = None  # branches per prior call; lowered after an out-of-memory error
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._waiting: dict[int, int] = dict.fromkeys(Priority, 0)
        self._waiting_lock = threading.Lock()
        self._current: JobHandle | None = None
        self._handles: dict[int, JobHandle] = {}
        # Paused jobs out of the queue, with their place in it. The lock orders pause, resume, cancel and
        # the worker taking a job, and keeps their events in order; under it the project lock may be taken,
        # never the other way round.
        self._held: dict[int, tuple[JobHandle, int]] = {}
        self._hold_lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="cocompose-engine", daemon=True)
        self._thread.start()

    # -- the caller's side ----------------------------------------------------------------------
    def read(self, fn: Callable[[Project], Any]) -> Any:
        with self.lock:
            return fn(self.project)

    def submit(self, request) -> JobHandle:
        from cocompose.service.runners import node_of

        node_id = node_of(request)
        detail = {"request": type(request).__name__, **_plain(request)}
        # A job about a take that is not there is still recorded (then fails with a clear message).
        job_id = self.read(lambda p: p.add_job(request.kind, node_id if node_id in p.tree else None, detail))
        handle = JobHandle(job_id, request, _on_cancel=self._cancel_held)
        self._handles[job_id] = handle
        self._put(handle, next(self._order))
        self._emit(handle, QUEUED)
        return handle

    def cancel_all(self) -> None:
        for handle in list(self._handles.values()):
            if not handle.done():
                handle.cancel()

    def pause(self, job_id: int) -> None:
        """Hold a job aside: a running one stops at its next checkpoint keeping everything it drew, a queued
        one will not start. Pausing a paused job does nothing; a finished or unknown one is a
        JobStateError. A job with no checkpoint (a preview, a fast render) simply finishes."""
        with self._hold_lock:
            handle = self._job(job_id, "pause")
            if handle.pause_requested:
                return
            handle._pause.set()
            if handle is not self._current:  # queued: the worker sets it aside when it gets there
                self._mark(handle, PAUSED, "paused")

    def resume(self, job_id: int) -> None:
        """Put a paused job back in the queue in its old place; it goes on from where it stopped."""
        with self._hold_lock:
            handle = self._job(job_id, "resume")
            if not handle.pause_requested:
                raise JobStateError(f"Job {job_id} ({handle.kind}) is not paused; it is {handle.state}.")
            handle._pause.clear()
            held = self._held.pop(job_id, None)
            if held is not None:
                self._put(handle, held[1])
            if handle is not self._current:  # still on its way to the checkpoint: it simply goes on
                self._mark(handle, QUEUED, "resumed")

    def _job(self, job_id: int, verb: str) -> JobHandle:
        handle = self._handles.get(job_id)
        if handle is None:
            raise JobStateError(f"There is no job {job_id} to {verb} (it may belong to an earlier session).")
        if handle.done():
            raise JobStateError(f"Job {job_id} ({handle.kind}) has already finished ({handle.state}).")
        return handle

    def _mark(self, handle: JobHandle, state: str, message: str) -> None:
        self.read(lambda p: p.update_job(handle.id, state=state, progress=handle.fraction))
        self._emit(handle, state, message=message)

    def _cancel_held(self, handle: JobHandle) -> None:
        """A cancelled paused job goes back to the worker, which finishes it (on its own thread)."""
        with self._hold_lock:
            held = self._held.pop(handle.id, None)
            if held is not None:
                self._put(handle, held[1])

    def close(self, cancel: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the worker: cancel what is left (or let it finish), then join the thread. Paused jobs
        cannot run once the worker is gone, so they are cancelled either way."""
        if cancel:
            self.cancel_all()
        with self._hold_lock:
            paused = [handle for handle, _ in self._held.values()]
        for handle in paused:
            handle.cancel()
        self._queue.put((len(Priority) + 1, next(self._order), _STOP))
        self._thread.join(timeout)

    def __enter__(self) -> ComposeService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker -------------------------------------------------------------------------------
    def _put(self, handle: JobHandle, order: int) -> None:
        with self._waiting_lock:
            self._waiting[handle.request.priority] += 1
        self._queue.put((int(handle.request.priority), order, handle))

    def _interactive_waiting(self) -> bool:
        with self._waiting_lock:
            return self._waiting[Priority.INTERACTIVE] > 0

    def _run(self) -> None:
        while True:
            _, order, handle = self._queue.get()
            if handle is _STOP:
                return
            with self._waiting_lock:
                self._waiting[handle.request.priority] -= 1
            if handle.cancel_requested:
                self._finish(handle, CANCELLED)
                continue
            with self._hold_lock:
                # A cancel from here on finds the job either held (and requeues it) or current.
                held = handle.pause_requested and not handle.cancel_requested
                if held:  # paused while queued; its "paused" event is out already
                    self._held[handle.id] = (handle, order)
                else:
                    self._current = handle
            if held:
                continue
            try:
                self._run_one(handle, order)
            finally:
                self._current = None

    def _run_one(self, handle: JobHandle, order: int) -> None:
        from cocompose.service.runners import RUNNERS

        context = JobContext(self, handle)
        self.read(lambda p: p.update_job(handle.id, state=RUNNING))
        context.meter.restart(handle.fraction)
        self._emit(handle, RUNNING, message="started")
        try:
            result = RUNNERS[handle.kind](context, handle.request)
        except Preempted:
            self._set_aside(handle, order, "paused for an interactive job")
        except Cancelled:
            if handle.cancel_requested:
                self._finish(handle, CANCELLED)
            else:  # stopped for a pause (or for one that was resumed before it took effect)
                self._set_aside(handle, order, "resumed")
        except Exception as exc:  # reported to the caller, never lost on the worker thread
            self._finish(handle, FAILED, error=exc)
        else:
            handle.fraction = 1.0
            self._finish(handle, DONE, result=result)

    def _set_aside(self, handle: JobHandle, order: int, message: str) -> None:
        """A job that stopped early keeping its work: held aside if paused, else queued in its old place
        (ahead of later background jobs)."""
        with self._hold_lock:
            self._current = None  # so that a resume from here on marks it queued
            if handle.pause_requested and not handle.cancel_requested:
                self._held[handle.id] = (handle, order)
                self._mark(handle, PAUSED, "paused")
            else:
                self._mark(handle, QUEUED, message)
                self._put(handle, order)

    def _finish(self, handle: JobHandle, state: str, result=None, error: BaseException | None = None) -> None:
        from cocompose.service.runners import ABANDON

        try:
            self.read(lambda p: p.update_job(handle.id, state=state, progress=handle.fraction))
            if state != DONE and handle.kind in ABANDON:
                self.read(lambda p: ABANDON[handle.kind](p, handle))
        except Exception as exc:  # the file may be gone or full; the caller still learns the outcome
            error = error or exc
        handle._finish(state, result, error)
        self._emit(handle, state, message=str(error) if error else "")

    def _emit(self, handle: JobHandle, state: str, eta: float | None = None, message: str = "") -> None:
        handle.state = state
        self._send(JobEvent(handle.id, handle.kind, state, handle.fraction, eta, message, handle.node_ids))

    def _send(self, event: JobEvent) -> None:
        self.events.put(event)
        if self.on_event is not None:
            self.on_event(event)


def _plain(request) -> dict:
    """A request as JSON-ready fields (for the jobs table's detail column)."""
    out = {}
    for name, value in vars(request).items():
        # asdict goes down into nested records too (a conditioning's blend and tempo)
        out[name] = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
    return out
