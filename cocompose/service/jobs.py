"""Jobs as the caller sees them: a handle to wait on or cancel, and the events the worker sends."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Job states, as in the project's jobs table. A paused job is held aside, out of the queue, until resumed.
QUEUED, RUNNING, PAUSED = "queued", "running", "paused"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
# The message of a RUNNING event that says new audio of its takes is in ComposeService.live.
PREVIEW_AUDIO = "preview audio"
FINISHED = (DONE, FAILED, CANCELLED)


class Preempted(Exception):
    """A background job stepped aside at a window boundary for an interactive one; it runs again later."""


class JobCancelled(Exception):
    """`JobHandle.wait` on a job that was cancelled."""


class JobStateError(ValueError):
    """Pause or resume asked of a job that cannot take it (finished, unknown, not paused)."""


@dataclass(frozen=True)
class JobEvent:
    """One report from the worker. fraction in [0, 1]; eta_s None until a rate has been measured."""

    job_id: int
    kind: str
    state: str
    fraction: float = 0.0
    eta_s: float | None = None
    message: str = ""
    node_ids: tuple[int, ...] = ()


class EtaMeter:
    """ETA from the measured rate of this job: elapsed / fraction done, times what is left."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._start_fraction = 0.0

    def restart(self, fraction: float) -> None:
        """Measure from here (a resumed job's earlier work says nothing about its rate now)."""
        self._start, self._start_fraction = self._clock(), fraction

    def eta(self, fraction: float) -> float | None:
        gained = fraction - self._start_fraction
        if gained <= 0.0:
            return None
        return (self._clock() - self._start) / gained * (1.0 - fraction)


@dataclass
class JobHandle:
    """The caller's side of a job. `wait` returns the result or raises what the job raised."""

    id: int
    request: Any
    node_ids: tuple[int, ...] = ()
    state: str = QUEUED
    fraction: float = 0.0
    result: Any = None
    error: BaseException | None = None
    # What a paused runner needs to go on exactly where it stopped (its runner's own business).
    carry: Any = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _pause: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    # Set by the service: a job held aside as paused is not in the queue, so a cancel must reach it.
    _on_cancel: Any = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.request.kind

    def cancel(self) -> None:
        """Ask the job to stop at its next drawn code (or not to start at all)."""
        self._cancel.set()
        if self._on_cancel is not None:
            self._on_cancel(self)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def pause_requested(self) -> bool:
        """Set by `ComposeService.pause`, cleared by `resume`; a runner stops at its next checkpoint."""
        return self._pause.is_set()

    @property
    def should_stop(self) -> bool:
        return self._cancel.is_set() or self._pause.is_set()

    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        if not self._finished.wait(timeout):
            raise TimeoutError(f"job {self.id} ({self.kind}) still {self.state} after {timeout} s")
        if self.state == CANCELLED:
            raise JobCancelled(f"job {self.id} ({self.kind}) was cancelled")
        if self.error is not None:
            raise self.error
        return self.result

    def _finish(self, state: str, result: Any = None, error: BaseException | None = None) -> None:
        self.state, self.result, self.error = state, result, error
        self._finished.set()
