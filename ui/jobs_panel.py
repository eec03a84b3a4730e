"""Running and queued work (branches, previews, upsampling, renders, exports): one row per job with its
priority, state, a progress bar, the time left, a Pause/Resume button and a Cancel button. Rows are updated
only from the JobEvents the bridge delivers; nothing here asks the engine anything."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cocompose.service.jobs import FINISHED, PAUSED
from cocompose.service.requests import Priority

KIND_TEXT = {"generate": "Branches", "preview": "Preview", "upsample": "Upsampling", "render": "Render",
             "export": "Export"}  # fmt: skip
PRIORITY_TEXT = {Priority.INTERACTIVE: "interactive", Priority.BACKGROUND: "background"}
COLUMNS = ("Job", "Priority", "State", "Progress", "Time left", "", "")
KIND, PRIORITY, STATE, PROGRESS, ETA, PAUSE, CANCEL = range(len(COLUMNS))


def eta_text(eta_s: float | None) -> str:
    if eta_s is None:
        return ""
    seconds = round(eta_s)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class JobsPanel(QWidget):
    cancelRequested = Signal(int)  # job id
    pauseRequested = Signal(int)  # job id
    resumeRequested = Signal(int)  # job id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTreeWidget(objectName="jobsTable")
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(list(COLUMNS))
        header, advance = self.table.header(), self.table.fontMetrics().horizontalAdvance
        header.setSectionResizeMode(KIND, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        # Narrow fixed columns from the font, so the job's name gets the room (it says what runs).
        for column, sample in ((PRIORITY, "background"), (STATE, "running"), (PROGRESS, "100%  100%"),
                               (ETA, "Time left"), (PAUSE, "Resume"), (CANCEL, "Cancel")):  # fmt: skip
            header.resizeSection(column, advance(sample) + 24)
        self._rows: dict[int, QTreeWidgetItem] = {}
        self._bars: dict[int, QProgressBar] = {}
        self._cancels: dict[int, QPushButton] = {}
        self._pauses: dict[int, QPushButton] = {}
        self._paused: set[int] = set()  # rows whose last event said "paused": their button resumes
        clear = QPushButton("Clear finished", objectName="clearFinished")
        clear.clicked.connect(self.clear_finished)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(bottom)

    def update_job(self, event, priority: Priority) -> None:
        """Show a JobEvent: a new row for a new job, else update its row."""
        item = self._rows.get(event.job_id)
        if item is None:
            item = self._add_row(event.job_id)
        label = KIND_TEXT.get(event.kind, event.kind)
        if event.node_ids and event.kind == "generate":
            label += f" ({len(event.node_ids)} takes)"
        item.setText(KIND, label)
        item.setText(PRIORITY, PRIORITY_TEXT[priority])
        item.setText(STATE, event.state if not event.message or event.state != "failed" else event.message)
        item.setToolTip(STATE, event.message)
        item.setText(ETA, eta_text(event.eta_s) if event.state == "running" else "")
        self._bars[event.job_id].setValue(round(100 * event.fraction))
        alive = event.state not in FINISHED and event.job_id >= 0  # an export pauses through its render job
        self._cancels[event.job_id].setEnabled(alive)
        pause = self._pauses[event.job_id]
        pause.setEnabled(alive)
        if event.state == PAUSED:
            self._paused.add(event.job_id)
        else:
            self._paused.discard(event.job_id)
        pause.setText("Resume" if event.job_id in self._paused else "Pause")

    def _add_row(self, job_id: int) -> QTreeWidgetItem:
        item = QTreeWidgetItem()
        item.setData(KIND, Qt.ItemDataRole.UserRole, job_id)
        self.table.addTopLevelItem(item)
        bar = QProgressBar(minimum=0, maximum=100)
        pause = QPushButton("Pause")
        pause.clicked.connect(lambda: self._pause_clicked(job_id))
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(lambda: self.cancelRequested.emit(job_id))
        self.table.setItemWidget(item, PROGRESS, bar)
        self.table.setItemWidget(item, PAUSE, pause)
        self.table.setItemWidget(item, CANCEL, cancel)
        self._rows[job_id], self._bars[job_id], self._cancels[job_id] = item, bar, cancel
        self._pauses[job_id] = pause
        return item

    def _pause_clicked(self, job_id: int) -> None:
        # The row changes when the service says so (a "paused" or "queued" event), not on the click.
        (self.resumeRequested if job_id in self._paused else self.pauseRequested).emit(job_id)

    def job_ids(self) -> list[int]:
        return list(self._rows)

    def state_of(self, job_id: int) -> str:
        return self._rows[job_id].text(STATE)

    def fraction_of(self, job_id: int) -> float:
        return self._bars[job_id].value() / 100

    def cancel_button(self, job_id: int) -> QPushButton:
        return self._cancels[job_id]

    def pause_button(self, job_id: int) -> QPushButton:
        return self._pauses[job_id]

    def clear_finished(self) -> None:
        for job_id in [j for j, button in self._cancels.items() if not button.isEnabled()]:
            item = self._rows.pop(job_id)
            self._bars.pop(job_id)
            self._cancels.pop(job_id)
            self._pauses.pop(job_id)
            self._paused.discard(job_id)
            self.table.takeTopLevelItem(self.table.indexOfTopLevelItem(item))
