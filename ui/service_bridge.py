"""The session's reports, which arrive on worker threads, as Qt signals on the GUI thread.

`notify(kind, payload)` is what the AppSession calls, from any thread. It puts the report in an inbox
and, only when the inbox was empty, emits a private signal connected with a queued connection, so Qt
posts one wake-up to the thread this object lives in (the GUI thread) and returns at once: the worker
never waits for the GUI, and the GUI never waits for the worker. The GUI then empties the inbox in one go.
A sampler reports every drawn code, thousands a second; batching keeps the GUI's work to one pass per
turn of its event loop, and the progress of a job within one batch is reduced to its latest report.
Futures returned by the session come back the same way through `when_done`.

"changed" reports (the song tree may have changed) are coalesced further: `treeChanged` fires at most
once per COALESCE_MS, which is all a person can see anyway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ui.refcount_guard import make_singletons_immortal

COALESCE_MS = 40
_DONE = "__future_done__"

make_singletons_immortal()  # every emit below would otherwise wear down True's count (see the module)


class ServiceBridge(QObject):
    jobEvent = Signal(object)  # cocompose.service.JobEvent
    projectChanged = Signal(object)  # ProjectSummary, or None when no project is open
    modelChanged = Signal(object)  # ModelSummary, or None
    modelLoading = Signal(str)
    stateChanged = Signal(object)  # AppState (recent projects)
    treeChanged = Signal()
    errorRaised = Signal(str)

    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._awake_lock = threading.Lock()
        self._wake_pending = False
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self._tree_timer = QTimer(self)
        self._tree_timer.setSingleShot(True)
        self._tree_timer.setInterval(COALESCE_MS)
        self._tree_timer.timeout.connect(self.treeChanged)

    def notify(self, kind: str, payload: Any) -> None:
        """Thread-safe: the AppSession's notify callback."""
        self._inbox.put((kind, payload))
        with self._awake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake.emit()

    def _drain(self) -> None:
        with self._awake_lock:
            self._wake_pending = False
        batch = []
        while True:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        # A job's "running" report is dropped when a later report of the same job is in the batch.
        later: set[int] = set()
        kept = []
        for kind, payload in reversed(batch):
            if kind == "job":
                if payload.state == "running" and payload.job_id in later:
                    continue
                later.add(payload.job_id)
            kept.append((kind, payload))
        for kind, payload in reversed(kept):
            self._deliver(kind, payload)

    def when_done(self, future: Future, on_result: Callable[[Any], None] | None = None,
                  on_error: Callable[[BaseException], None] | None = None) -> None:  # fmt: skip
        """Call on_result(value) or on_error(exception) on the GUI thread once `future` has finished.
        The session already reports failures as errorRaised; on_error is for extra clean-up."""
        future.add_done_callback(lambda f: self.notify(_DONE, (f, on_result, on_error)))

    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == _DONE:
            future, on_result, on_error = payload
            error = future.exception() if not future.cancelled() else None
            if future.cancelled():
                return
            if error is not None:
                if on_error is not None:
                    on_error(error)
            elif on_result is not None:
                on_result(future.result())
            return
        if kind == "changed":
            if not self._tree_timer.isActive():
                self._tree_timer.start()
            return
        signal = {
            "job": self.jobEvent,
            "project": self.projectChanged,
            "model": self.modelChanged,
            "model_loading": self.modelLoading,
            "state": self.stateChanged,
            "error": self.errorRaised,
        }.get(kind)
        if signal is not None:
            signal.emit(payload)
