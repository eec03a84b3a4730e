"""The session's reports, which arrive on worker threads, as Qt signals on the GUI thread.

`notify(kind, payload)` is what the AppSession calls, from any thread. It only emits a private signal
connected with a queued connection, so Qt posts it to the thread this object lives in (the GUI thread)
and returns at once: the worker never waits for the GUI, and the GUI never waits for the worker.
Futures returned by the session come back the same way through `when_done`.

"changed" reports (the song tree may have changed: one per drawn piece while sampling) are coalesced:
`treeChanged` fires at most once per COALESCE_MS, which is all a person can see anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

COALESCE_MS = 40
_DONE = "__future_done__"


class ServiceBridge(QObject):
    jobEvent = Signal(object)  # cocompose.service.JobEvent
    projectChanged = Signal(object)  # ProjectSummary, or None when no project is open
    modelChanged = Signal(object)  # ModelSummary, or None
    modelLoading = Signal(str)
    stateChanged = Signal(object)  # AppState (recent projects)
    treeChanged = Signal()
    errorRaised = Signal(str)

    _posted = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._tree_timer = QTimer(self)
        self._tree_timer.setSingleShot(True)
        self._tree_timer.setInterval(COALESCE_MS)
        self._tree_timer.timeout.connect(self.treeChanged)

    def notify(self, kind: str, payload: Any) -> None:
        """Thread-safe: the AppSession's notify callback."""
        self._posted.emit(kind, payload)

    def when_done(self, future: Future, on_result: Callable[[Any], None] | None = None,
                  on_error: Callable[[BaseException], None] | None = None) -> None:  # fmt: skip
        """Call on_result(value) or on_error(exception) on the GUI thread once `future` has finished.
        The session already reports failures as errorRaised; on_error is for extra clean-up."""
        future.add_done_callback(lambda f: self._posted.emit(_DONE, (f, on_result, on_error)))

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
