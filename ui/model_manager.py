"""The model manager: the embedded default model, the installed models, the official Jukebox models to
download, and "Add folder…" for a model of one's own.

Wiring (main window), one instance kept for the window's life so that a download goes on while the
dialog is closed and shows its progress when it is opened again:

    self.models_dialog = ModelManager(parent=self)
    self.models_dialog.modelChosen.connect(lambda folder: self.load_model(folder))  # a Path
    menu.addAction("&Models…", self.models_dialog.open)
    ...  # at exit (closeEvent): self.models_dialog.shutdown()

Nothing here touches the disk or the network on the GUI thread: the list is read by `model_catalog.scan`
on a worker thread (it imports cocompose.download, and with it torch, there), and a download or a copy
runs on a thread of its own. Reports come back through `_Inbox`: the worker queues them and wakes the GUI
with one queued signal per batch, of which only the latest progress is shown. Cancel keeps the .part
files, so Download continues where it stopped. Errors (network, disk full, wrong server) are shown in the
dialog; the GUI never blocks and the app keeps running.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cocompose.model_catalog import Catalog, ModelEntry, human_bytes
from cocompose.models import DEFAULT_MODEL_DIR
from ui.refcount_guard import make_singletons_immortal

make_singletons_immortal()  # progress reports are emitted thousands of times (see refcount_guard)

COLUMNS = ("Model", "State", "Size", "Top priors", "Sample rate")
NAME, STATE, SIZE, PRIORS, RATE = range(len(COLUMNS))
SECTIONS = ("Default model", "Installed", "Official Jukebox models (download)")
DEFAULT, INSTALLED, OFFICIAL = range(len(SECTIONS))
PROGRESS_STEPS = 1000

# Builds the DownloadRequest for an official model name (cocompose.download.DownloadRequest); tests point
# it at a loopback server. It is called on the worker thread.
RequestFactory = Callable[[str], Any]
# A task run on its own thread: work(report, cancel) -> the message to show when it is done.
Work = Callable[[Callable[[Any], None], threading.Event], str]


class _Inbox(QObject):
    """Reports from worker threads, delivered in batches on the thread this object lives in."""

    _wake = Signal()

    def __init__(
        self, deliver: Callable[[list[tuple[str, Any]]], None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._deliver = deliver
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = False
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    def post(self, kind: str, payload: Any) -> None:
        """Any thread. Wakes the GUI only when it has not been woken for an earlier report already."""
        self._queue.put((kind, payload))
        with self._lock:
            if self._pending:
                return
            self._pending = True
        try:
            self._wake.emit()
        except RuntimeError:  # the dialog (and this object) is gone; the worker is being cancelled
            pass

    def _drain(self) -> None:
        with self._lock:
            self._pending = False
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        last_progress = max((i for i, (kind, _) in enumerate(batch) if kind == "progress"), default=-1)
        self._deliver([item for i, item in enumerate(batch) if item[0] != "progress" or i == last_progress])


def _state_text(entry: ModelEntry) -> str:
    if entry.kind == "official" and entry.state in ("available", "partial"):
        text = f"to download: {human_bytes(entry.download_bytes)}"
        if entry.converted:
            text += f" ({len(entry.converted)} of {len(entry.files)} files converted)"
        if entry.partial_bytes:
            text += f", {human_bytes(entry.partial_bytes)} downloaded, resumes"
        return text
    if entry.state == "ready":
        return "ready" + (" (linked)" if entry.linked_to is not None else "")
    return entry.state


def describe(entry: ModelEntry) -> str:
    """The text under the list for the selected model."""
    lines = []
    if entry.kind == "default":
        lines.append(f"The embedded default model, in {entry.folder}.")
    elif entry.kind == "official":
        lines.append(
            f"Official Jukebox model {entry.name}: {', '.join(entry.files)} — about "
            f"{human_bytes(entry.full_bytes)} of weights, converted into {entry.folder}."
        )
    else:
        lines.append(f"Installed model {entry.name}, in {entry.folder}.")
    if entry.linked_to is not None:
        lines.append(f"A link to {entry.linked_to}: moving or deleting that folder removes it from here.")
    if entry.problem:
        lines.append(("Not usable: " if entry.state != "not built" else "") + entry.problem[:1].upper()
                     + entry.problem[1:] + ".")  # fmt: skip
    if entry.usable:
        rate = f"{entry.sample_rate} Hz" if entry.sample_rate else "sample rate unknown"
        ups = "with upsamplers" if entry.upsamplers else "without upsamplers (previews only)"
        lines.append(f"Top priors: {', '.join(entry.top_priors)}; {rate}; {ups}; "
                     f"{human_bytes(entry.size_bytes)} on disk.")  # fmt: skip
    if entry.kind == "official" and not entry.usable:
        lines.append(f"Download fetches at least {human_bytes(entry.download_bytes)} and needs about twice "
                     "that much free disk while converting; Cancel keeps what was fetched.")  # fmt: skip
    lines.extend(entry.notes)
    return "\n".join(lines)


class ModelManager(QDialog):
    """See the module docstring for the wiring.

    models_dir: where models are installed (default models_home()); default_dir: the embedded default
    model's folder; make_request: the DownloadRequest for an official model name (default
    model_catalog.official_request into models_dir).
    """

    modelChosen = Signal(object)  # Path: the folder of the model to use
    catalogChanged = Signal(object)  # model_catalog.Catalog, after every scan
    taskFinished = Signal(str, str)  # ("done" | "cancelled" | "failed", message)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        models_dir: Path | None = None,
        default_dir: Path = DEFAULT_MODEL_DIR,
        make_request: RequestFactory | None = None,
    ) -> None:
        super().__init__(parent, objectName="modelManager")
        self.setWindowTitle("Models")
        self.resize(760, 520)
        self._models_dir = models_dir
        self._default_dir = Path(default_dir)
        self._make_request = make_request
        self.catalog: Catalog | None = None
        self._rows: list[list[ModelEntry]] = [[] for _ in SECTIONS]
        self._scanner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cocompose-models-scan")
        self._shut_down = False
        self._task: threading.Thread | None = None
        self._cancel = threading.Event()
        self._inbox = _Inbox(self._receive, self)

        self.tree = QTreeWidget(objectName="modelList")
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.header().setSectionResizeMode(NAME, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(STATE, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setStretchLastSection(False)
        for title in SECTIONS:
            section = QTreeWidgetItem([title])
            section.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(section)
            section.setExpanded(True)
        self.details = QLabel(objectName="modelDetails", wordWrap=True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(objectName="modelProgress", minimum=0, maximum=PROGRESS_STEPS)
        self.progress.setVisible(False)
        self.progress_label = QLabel(objectName="modelProgressText", wordWrap=True)
        self.error_label = QLabel(objectName="modelError", wordWrap=True)
        self.error_label.setStyleSheet("color: #c0392b")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.use_button = QPushButton("&Use this model", objectName="useModel", enabled=False)
        self.download_button = QPushButton("&Download", objectName="downloadModel", enabled=False)
        self.cancel_button = QPushButton("&Cancel download", objectName="cancelTask", enabled=False)
        self.add_button = QPushButton("&Add folder…", objectName="addModelFolder")
        self.refresh_button = QPushButton("&Refresh", objectName="refreshModels")
        close = QPushButton("Close", objectName="closeModels")
        buttons = QHBoxLayout()
        for button in (self.use_button, self.download_button, self.cancel_button, self.add_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

        self.tree.currentItemChanged.connect(lambda *_: self._update_selection())
        self.tree.itemDoubleClicked.connect(lambda *_: self.use_selected())
        self.use_button.clicked.connect(self.use_selected)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.cancel_task)
        self.add_button.clicked.connect(self._choose_folder)
        self.refresh_button.clicked.connect(self.refresh)
        close.clicked.connect(self.close)
        cancel = self._cancel
        self.destroyed.connect(lambda *_: cancel.set())
        self.refresh()

    # --- the list ------------------------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        if self._models_dir is not None:
            return self._models_dir
        from cocompose.models import models_home

        return models_home()

    def refresh(self) -> None:
        """Read the folders again (on the scan thread); the list updates when the answer arrives."""
        if self._shut_down:
            return
        self.progress_label.setText(self.progress_label.text() or "Looking for models…")
        home, default_dir, inbox = self.models_dir, self._default_dir, self._inbox

        def run() -> None:
            from cocompose.model_catalog import scan

            try:
                inbox.post("catalog", scan(home, default_dir))
            except Exception as exc:  # an unreadable folder must not leave the dialog waiting forever
                inbox.post("scan_failed", f"cannot read the models folder {home}: {exc}")

        self._scanner.submit(run)

    def _show_catalog(self, catalog: Catalog) -> None:
        selected = self.selected()
        key = (selected.kind, selected.name) if selected is not None else None
        self.catalog = catalog
        self._rows = [[catalog.default], list(catalog.installed), list(catalog.official)]
        current = None
        for section_index, entries in enumerate(self._rows):
            section = self.tree.topLevelItem(section_index)
            section.takeChildren()
            for entry in entries:
                item = QTreeWidgetItem(self._columns(entry))
                item.setToolTip(NAME, str(entry.folder))
                section.addChild(item)
                if key == (entry.kind, entry.name):
                    current = item
            if section_index == INSTALLED and not entries:
                placeholder = QTreeWidgetItem([f"none yet in {catalog.home}"])
                placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
                section.addChild(placeholder)
        if current is None:
            usable = [
                (s, r) for s, entries in enumerate(self._rows) for r, e in enumerate(entries) if e.usable
            ]
            s, r = usable[0] if usable else (DEFAULT, 0)
            current = self.tree.topLevelItem(s).child(r)
        self.tree.setCurrentItem(current)
        if self._task is None and self.progress_label.text() == "Looking for models…":
            self.progress_label.setText("")
        self._update_selection()
        self.catalogChanged.emit(catalog)

    @staticmethod
    def _columns(entry: ModelEntry) -> list[str]:
        size = human_bytes(entry.size_bytes) if entry.size_bytes is not None else ""
        if entry.kind == "official" and entry.size_bytes is None:
            size = f"about {human_bytes(entry.full_bytes)}"
        rate = f"{entry.sample_rate} Hz" if entry.sample_rate else ""
        return [entry.name, _state_text(entry), size, ", ".join(entry.top_priors), rate]

    def entry_at(self, item: QTreeWidgetItem | None) -> ModelEntry | None:
        parent = item.parent() if item is not None else None
        if parent is None:
            return None
        rows = self._rows[self.tree.indexOfTopLevelItem(parent)]
        row = parent.indexOfChild(item)
        return rows[row] if row < len(rows) else None

    def selected(self) -> ModelEntry | None:
        return self.entry_at(self.tree.currentItem())

    def select(self, kind: str, name: str) -> bool:
        """Make the row of model `name` (kind "default", "installed" or "official") current."""
        section = {"default": DEFAULT, "installed": INSTALLED, "official": OFFICIAL}[kind]
        for row, entry in enumerate(self._rows[section]):
            if entry.name == name:
                self.tree.setCurrentItem(self.tree.topLevelItem(section).child(row))
                return True
        return False

    def _update_selection(self) -> None:
        entry = self.selected()
        busy = self.busy
        self.details.setText(describe(entry) if entry is not None else "")
        self.use_button.setEnabled(entry is not None and entry.usable)
        can_download = entry is not None and entry.kind == "official" and entry.state != "ready"
        self.download_button.setEnabled(can_download and not busy)
        if entry is not None and entry.kind == "official" and entry.partial_bytes:
            self.download_button.setText("Resume &download")
        else:
            self.download_button.setText("&Download")
        self.add_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and not self._cancel.is_set())

    # --- actions -------------------------------------------------------------------------------------

    def use_selected(self) -> None:
        entry = self.selected()
        if entry is not None and entry.usable:
            self.modelChosen.emit(entry.folder)

    @property
    def busy(self) -> bool:
        return self._task is not None

    def download_selected(self) -> None:
        entry = self.selected()
        if entry is not None and entry.kind == "official" and entry.state != "ready":
            self.download(entry.name)

    def download(self, model: str) -> None:
        """Download and convert an official model (5b, 5b_lyrics, 1b_lyrics) in the background."""
        make_request, home = self._make_request, self.models_dir

        def work(report: Callable[[Any], None], cancel: threading.Event) -> str:
            from cocompose.download import download_jukebox
            from cocompose.model_catalog import official_request

            request = make_request(model) if make_request is not None else official_request(model, home)
            result = download_jukebox(request, report, cancel)
            if result.converted:
                return f"{model} is ready in {result.folder}"
            return f"{model} was already converted in {result.folder}"

        self._start(f"Downloading {model}", "the download", work)

    def add_folder(self, source: Path, link: bool, name: str | None = None) -> None:
        """Install a model folder by copying it into the models folder, or by linking to it (link=True)."""
        home = self.models_dir
        source = Path(source)

        def work(report: Callable[[Any], None], cancel: threading.Event) -> str:
            from cocompose.model_catalog import add_model_folder

            target = add_model_folder(source, home, link=link, name=name, progress=report, cancel=cancel)
            if link:
                return f"Linked {target} to {source.resolve()}: the model stays where it is (not copied)"
            return f"Copied {source} into {target}: the original folder is untouched"

        self._start(("Linking " if link else "Copying ") + str(source), "adding the folder", work)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A model folder (with bundle.json or vqvae.json)")
        if not folder:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Add model folder",
                          f"Add {folder} to the models folder ({self.models_dir})?\n\n"
                          "Copy: the models folder gets its own copy (uses disk space; the original can be "
                          "moved or deleted).\nLink: the model stays where it is (no disk used; moving the "
                          "folder removes it from the list).", parent=self)  # fmt: skip
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        link = box.addButton("Link", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() in (copy, link):
            self.add_folder(Path(folder), link=box.clickedButton() is link)

    def cancel_task(self) -> None:
        """Stop the running download (its .part files stay; Download resumes) or copy (nothing is added)."""
        if self._task is not None:
            self._cancel.set()
            self.progress_label.setText("Cancelling…")
            self._update_selection()

    def _start(self, title: str, action: str, work: Work) -> None:
        if self._task is not None:
            self.error_label.setText("Wait for the running download or copy to finish, or cancel it.")
            return
        inbox = self._inbox
        cancel = self._cancel = threading.Event()
        self.destroyed.connect(lambda *_: cancel.set())

        def report(event: Any) -> None:
            if event.stage in ("download", "copy"):
                inbox.post("progress", (event, _progress_line(event)))
            else:
                inbox.post("note", (event.stage, event.message))

        def run() -> None:
            from cocompose.fetch import DownloadCancelled
            from cocompose.model_catalog import AddCancelled, explain_failure

            try:
                inbox.post("finished", ("done", work(report, cancel)))
            except (DownloadCancelled, AddCancelled) as exc:
                kept = "; press Download again to continue" if isinstance(exc, DownloadCancelled) else ""
                inbox.post("finished", ("cancelled", f"Cancelled: {exc}{kept}"))
            except Exception as exc:
                inbox.post("finished", ("failed", explain_failure(exc, action)))

        self.error_label.setText("")
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.progress_label.setText(title + "…")
        self._task = threading.Thread(target=run, name="cocompose-models-task", daemon=True)
        self._task.start()
        self._update_selection()

    # --- reports from the workers --------------------------------------------------------------------

    def _receive(self, batch: list[tuple[str, Any]]) -> None:
        for kind, payload in batch:
            if kind == "catalog":
                self._show_catalog(payload)
            elif kind == "scan_failed":
                self.progress_label.setText("")
                self.error_label.setText(payload)
            elif kind == "progress":
                self._show_progress(*payload)
            elif kind == "note":
                stage, message = payload
                if stage == "convert":
                    self.progress.setRange(0, 0)  # busy: a conversion reports no fraction
                self.progress_label.setText(message)
            elif kind == "finished":
                self._finished(*payload)

    def _show_progress(self, event: Any, line: str) -> None:
        done, total = event.done, event.total
        all_total = getattr(event, "all_total", None)
        if all_total:
            done, total = event.all_done, all_total
        self.progress.setRange(0, PROGRESS_STEPS)
        if total:
            self.progress.setValue(round(PROGRESS_STEPS * min(1.0, done / total)))
        if self._cancel.is_set():
            return  # "Cancelling…" stays until the worker stops
        self.progress_label.setText(line)

    def _finished(self, outcome: str, message: str) -> None:
        if self._task is not None:
            self._task.join()  # it has posted its last report; joining takes no time
            self._task = None
        self.progress.setVisible(False)
        self.progress.setRange(0, PROGRESS_STEPS)
        if outcome == "failed":
            self.error_label.setText(message)
            self.progress_label.setText("")
        else:
            self.progress_label.setText(message)
        self.taskFinished.emit(outcome, message)
        self._update_selection()
        self.refresh()

    # --- closing -------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing hides the dialog; a running download goes on (reopen the dialog to see it)."""
        self.hide()
        event.accept()

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """At exit: cancel the running task and wait for it (downloads stop at the next chunk; a
        conversion at the next file). True when nothing is left running."""
        self._cancel.set()
        self._shut_down = True
        if self._task is not None:
            self._task.join(timeout_s)
        self._scanner.shutdown(wait=False, cancel_futures=True)
        return self._task is None or not self._task.is_alive()


def _progress_line(event: Any) -> str:
    """Bytes, rate and time left, as the command line prints them (runs on the worker thread)."""
    from cocompose.download_cli import TerminalProgress

    line = TerminalProgress.describe(event)
    all_total = getattr(event, "all_total", None)
    if all_total and all_total != event.total:
        line += f" — {human_bytes(event.all_done)} of {human_bytes(all_total)} in all"
    return line
