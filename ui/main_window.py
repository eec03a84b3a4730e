"""The main window: the tree of takes, the timeline of the song, the waveform and transport of what plays,
the generate and conditioning panels, the jobs, and the menus, wired to an AppSession through a
ServiceBridge.

The GUI thread never waits: every request goes to the session (which answers with a future), and every
answer comes back as a bridge signal. The tree shown is a mirror of the project's, brought up to date on
this thread from a snapshot (cocompose.tree_mirror), so the Qt model only ever changes here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from PySide6.QtCore import QItemSelection, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cocompose.app_reports import ModelSummary, ProjectSummary, memory_in_use, unused_path
from cocompose.app_session import NO_MODEL_HELP, AppSession
from cocompose.audio_io import AudioStatus
from cocompose.playback import PlayerState, PlayerStatus
from cocompose.service.jobs import FINISHED
from cocompose.settings import Settings
from cocompose.song import NodeState, SongTree
from cocompose.store import FILE_SUFFIX
from cocompose.timeline import conditioning_sections, voice_label
from cocompose.tree_mirror import sync
from ui.conditioning_panel import ConditioningPanel
from ui.export_dialog import ExportDialog
from ui.generate_panel import GeneratePanel, GenerateSettings
from ui.jobs_panel import JobsPanel
from ui.lyrics_follower import LyricsFollower
from ui.main_menus import build_menus, new_action
from ui.new_song_dialog import NewSongDialog
from ui.playback_panel import PlaybackPanel
from ui.project_view import ProjectView
from ui.qt_song_tree_model import QtSongTreeModel
from ui.record_dialog import RecordDialog
from ui.service_bridge import ServiceBridge
from ui.timeline_view import TimelineView, path_segments
from ui.tree_view import TakesTreeView

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
MEMORY_EVERY_MS = 2000
SNAPSHOT_RETRY_MS = 15
DEFAULT_MODEL = object()  # MainWindow(model=...): load the embedded default model
FROM_SETTINGS = object()  # MainWindow(output_device=..., input_device=...): the devices the settings name


def _app_version() -> str:
    try:
        return version("cocompose")
    except PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "(not installed)"


def _megabytes(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MB"


class MainWindow(QMainWindow):
    def __init__(self, audio: AudioStatus, parent: QWidget | None = None, *, state_dir: Path | None = None,
                 model: object = DEFAULT_MODEL, offer_reopen: bool = True,
                 output_device: object = FROM_SETTINGS,
                 input_device: object = FROM_SETTINGS) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Cocompose")
        self.resize(1200, 760)
        self.setAcceptDrops(True)
        self.bridge = ServiceBridge(self)
        self.session = AppSession(self.bridge.notify, state_dir=state_dir)
        self.last_error = ""
        self._error_box: QMessageBox | None = None
        self._mirror = SongTree()
        self._project_path: Path | None = None
        self._summary: ProjectSummary | None = None
        self._model: ModelSummary | None = None
        self._shut = False
        settings = self.session.settings
        self._output_device = settings.output_device if output_device is FROM_SETTINGS else output_device
        self._input_device = settings.input_device if input_device is FROM_SETTINGS else input_device
        self._audio_available = audio.available

        self._build_widgets()
        build_menus(self)
        self._build_status_bar(audio)
        self._connect()
        self._use_defaults(settings)
        self._show_project(None)

        if model is DEFAULT_MODEL:
            self.load_model(None)
        elif model is not None:
            self.load_model(model)
        if offer_reopen:
            QTimer.singleShot(0, self._offer_reopen)

    # -- building -----------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.tree_model = QtSongTreeModel(parent=self)
        self.tree_view = TakesTreeView(self.tree_model)
        self.tree_view.setObjectName("takesTree")
        self.timeline = TimelineView()
        self.info = QLabel(objectName="placeholder", wordWrap=True)
        self.info.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # The stream is opened at once only when the startup probe found a device: the first Space is then
        # instant, and a window told there is no sound holds no device.
        self.playback = PlaybackPanel(self.session, self.bridge.when_done, self._output_device,
                                      open_now=self._audio_available)  # fmt: skip
        self.jobs_panel = JobsPanel()
        self.generate_panel = GeneratePanel()
        self.conditioning_panel = ConditioningPanel()
        self.lyrics = LyricsFollower(self)

        middle = QWidget()
        column = QVBoxLayout(middle)
        column.addWidget(self.info)
        column.addWidget(self.timeline)
        column.addWidget(self.playback, 2)
        column.addWidget(self.jobs_panel, 1)
        self.panels = QTabWidget(objectName="panels")
        self.panels.addTab(self.generate_panel, "Generate")
        self.panels.addTab(self.conditioning_panel, "Conditioning")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.tree_view, 2), (middle, 3), (self.panels, 2)):
            splitter.addWidget(widget)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        # Stretch factors only share out extra room; the plots' wide minimum would starve the tree of its
        # take names without starting sizes (scaled by Qt to the window's width).
        splitter.setSizes([380, 620, 300])
        self.setCentralWidget(splitter)

        # Space, L, arrows, Home/End anywhere in the window but in text entries; number keys move the
        # cursor among the siblings of the take under it, and what plays follows it at the same moment
        # (A/B by ear). An application filter: the tree's type-to-search would otherwise take the digit.
        self.playback.install_keys(self, self.select_sibling)

    def _build_status_bar(self, audio: AudioStatus) -> None:
        # Permanent widgets, not showMessage(): menu hover tips would overwrite a plain message.
        self.message_label = QLabel("", objectName="messageArea")
        audio_label = QLabel(audio.summary(), objectName="audioStatus")
        self.model_label = QLabel("No model", objectName="modelStatus")
        self.device_label = QLabel("", objectName="deviceStatus")
        self.memory_label = QLabel("", objectName="memoryStatus")
        # Why nothing can play (no device, a device lost), beside the startup probe's line.
        self.player_label = QLabel("", objectName="playerStatus")
        self.statusBar().addWidget(audio_label)
        self.statusBar().addWidget(self.player_label)
        self.statusBar().addWidget(self.message_label, 1)
        for label in (self.model_label, self.device_label, self.memory_label):
            self.statusBar().addPermanentWidget(label)
        self._memory_timer = QTimer(self, interval=MEMORY_EVERY_MS)
        self._memory_timer.timeout.connect(self._show_memory)
        self._memory_timer.start()
        self._show_memory()
        self._show_player_status(self.playback.player.status())

    def _connect(self) -> None:
        b = self.bridge
        b.treeChanged.connect(self._sync_tree)
        b.projectChanged.connect(self._show_project)
        b.modelChanged.connect(self._show_model)
        b.modelLoading.connect(self.model_label.setText)
        b.jobEvent.connect(lambda event: self.jobs_panel.update_job(event, self.session.job_priority(event)))
        b.jobEvent.connect(self._job_event)
        b.errorRaised.connect(self.show_error)
        b.stateChanged.connect(lambda _state: self._rebuild_recent())
        self.tree_view.pickRequested.connect(self.session.pick)
        self.tree_view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.tree_model.editFailed.connect(self.show_error)
        self.generate_panel.generateRequested.connect(self.generate)
        self.conditioning_panel.swapRequested.connect(self.swap)
        self.conditioning_panel.problem.connect(self.show_error)
        self.timeline.set_voice_provider(lambda: voice_label(self.conditioning_panel.conditioning()))
        self.timeline.voiceChangeRequested.connect(self.change_voice_at)
        self.jobs_panel.cancelRequested.connect(self.session.cancel)
        # Both return Futures; a refusal (a job that just finished) comes back through errorRaised.
        self.jobs_panel.pauseRequested.connect(self.session.pause_job)
        self.jobs_panel.resumeRequested.connect(self.session.resume_job)
        self.playback.playerStatusChanged.connect(self._show_player_status)
        self.playback.renderToggleRequested.connect(self.render_action.toggle)
        self.playback.playerStatusChanged.connect(lambda _status: self.lyrics.mark_playhead())
        self.playback.playheadMoved.connect(lambda _seconds: self.lyrics.mark_playhead())
        self.playback.pathShown.connect(
            lambda _path: self.playback.set_markers(self._mirror, self._codes_per_second())
        )

    # -- what the session reports ---------------------------------------------------------------------
    def _show_project(self, summary: ProjectSummary | None) -> None:
        self._summary = summary
        path = summary.path if summary else None
        if path != self._project_path:  # another song (or none): a fresh mirror, the one model reset
            self._project_path = path
            self._mirror = SongTree()
            view = ProjectView(self.session, self._mirror, summary.song) if summary else None
            self.tree_model.set_project(view)
            self.playback.forget()
            self._sync_tree()
        elif summary is not None:
            self.tree_model.project.song = summary.song
        title = f"{summary.song.title} — Cocompose" if summary else "Cocompose"
        self.setWindowTitle(title)
        self.undo_action.setEnabled(bool(summary and summary.undo_label))
        self.undo_action.setText(f"&Undo {summary.undo_label}" if summary and summary.undo_label else "&Undo")
        self.redo_action.setEnabled(bool(summary and summary.redo_label))
        self.redo_action.setText(f"&Redo {summary.redo_label}" if summary and summary.redo_label else "&Redo")
        for action in (self.save_as_action, self.export_action, self.close_action):
            action.setEnabled(summary is not None)
        self._update_info()

    def _show_model(self, model: ModelSummary | None) -> None:
        previous, self._model = self._model, model
        if model is None:
            self.model_label.setText("No model")
            self.device_label.setText("")
        else:
            self.model_label.setText(f"Model: {model.name}")
            self.model_label.setToolTip(model.reference)
            self.device_label.setText(f"Device: {model.device}")
            self.conditioning_panel.set_names(model.artists, model.genres)
            self.conditioning_panel.set_beat_clock(model.genre_tempi)
            # Another model starts from its own recommended label strength; the same one loaded again
            # (another device or precision, a failed switch) keeps what the musician chose.
            recommends = (model.reference, model.recommended_guidance)
            if previous is None or (previous.reference, previous.recommended_guidance) != recommends:
                self.generate_panel.set_recommended_guidance(model.recommended_guidance)
        self.upsample_action.setEnabled(bool(model and model.can_upsample))
        self._update_info()
        self.playback.forget()  # audio gathered with the old model is gone with its service
        self._play_cursor()
        self.lyrics.model_changed()

    def _update_info(self) -> None:
        if self._model is None and self.last_error == NO_MODEL_HELP:
            text = NO_MODEL_HELP
        elif self._summary is None:
            text = "Start a song with File > New Song (Ctrl+N), or open one with File > Open (Ctrl+O)."
        elif self._model is None:
            text = "Loading the model…"
        else:
            text = ""
        self.info.setText(text)
        self.info.setVisible(bool(text))
        self.generate_panel.set_enabled_actions(self._summary is not None and self._model is not None)

    def _show_memory(self) -> None:
        self.memory_label.setText(f"Memory: {_megabytes(memory_in_use())}")

    def _sync_tree(self) -> None:
        snapshot = self.session.snapshot()
        if snapshot is None:
            if self.session.project is not None:  # the worker holds the lock for a moment: look again soon
                QTimer.singleShot(SNAPSHOT_RETRY_MS, self._sync_tree)
            return
        sync(self._mirror, snapshot)
        rate = self._codes_per_second()
        has_takes = len(self._mirror) > 1
        self.timeline.empty_text = (
            "Nothing picked yet: play a take (Space), press Enter on the one you like"
            if has_takes else "The song is empty: generate a take"
        )  # fmt: skip
        self.timeline.set_segments(path_segments(self._mirror, rate) if len(self._mirror) else [])
        self.timeline.set_sections(conditioning_sections(self._mirror, self._mirror.current_path, rate))
        self.playback.set_markers(self._mirror, rate)
        self._play_cursor()
        self.lyrics.synced()

    def _codes_per_second(self) -> float:
        return self._summary.song.model.codes_per_second if self._summary else 1.0

    def show_error(self, message: str) -> None:
        """A problem, said plainly; the app keeps running. One box at a time (a newer message replaces)."""
        self.last_error = message
        self.message_label.setText(message.splitlines()[0] if message else "")
        if message == NO_MODEL_HELP:
            self._update_info()  # the window itself explains; no box for an app that simply has no model
            return
        if self._error_box is None:
            self._error_box = QMessageBox(QMessageBox.Icon.Warning, "Cocompose", "", parent=self)
            self._error_box.setObjectName("errorBox")
        self._error_box.setText(message)
        self._error_box.open()  # window-modal without a nested event loop

    def notice(self, message: str) -> None:
        self.message_label.setText(message)

    def _show_player_status(self, status: PlayerStatus) -> None:
        trouble = status.state in (PlayerState.UNAVAILABLE, PlayerState.FAILED)
        self.player_label.setText(status.message if trouble else "")
        self.player_label.setVisible(trouble)
        self.play_action.setEnabled(status.state is not PlayerState.UNAVAILABLE)

    # -- the take under the cursor --------------------------------------------------------------------
    def selected_take(self) -> int | None:
        node_id = self.tree_view.node_id_at(self.tree_view.currentIndex())
        return node_id if node_id is not None and node_id in self._mirror else None

    def playing_take(self) -> int | None:
        """The take whose path the player has loaded (it ends the song that plays)."""
        playing = self.playback.playing
        return playing.node_id if playing is not None and playing.node_id in self._mirror else None

    def select_take(self, node_id: int) -> None:
        self.tree_view.select_node(node_id)

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        node_id = self.selected_take()
        if node_id is not None:
            self.conditioning_panel.show_conditioning(self._mirror.conditioning_at(node_id))
            self._play_cursor()
        self.lyrics.ask(now=True)

    def _play_cursor(self) -> None:
        """Have the player hold the song up to the take under the cursor (else the song's end), and the
        paths of that take's siblings ready for the number keys."""
        # No cursor (a refresh of the tree): keep what plays, else the song's end.
        node_id = self.selected_take() or self.playing_take() or self._mirror.current_id
        if node_id is None or node_id not in self._mirror:
            return
        if self.playback.show_take(node_id, again=self._changed_since_loaded(node_id)) is not None:
            parent = self._mirror.node(node_id).parent_id
            others = [s.id for s in self._mirror.children(parent) if s.id != node_id] if parent else []
            self.playback.prefetch(others[:8])

    def _changed_since_loaded(self, node_id: int) -> bool:
        """The finished take loaded in the player has other codes now (its song was primed since)."""
        playing = self.playback.playing
        if playing is None or playing.node_id != node_id:
            return False
        if self._mirror.node(node_id).state is NodeState.IN_PROGRESS:
            return False  # growing: its audio follows by itself
        seconds = len(self._mirror.path_codes(node_id)) / self._codes_per_second()
        return abs(seconds - playing.take_end) > 1e-6

    def select_sibling(self, n: int) -> None:
        """Move the cursor to the n-th (1-based) sibling of the take under it (or of the one playing)."""
        node_id = self.selected_take() or self.playing_take()
        if node_id is None:
            return
        siblings = [s.id for s in self._mirror.children(self._mirror.node(node_id).parent_id)]
        if n <= len(siblings):
            self.select_take(siblings[n - 1])

    # -- actions --------------------------------------------------------------------------------------
    def load_model(self, name_or_folder) -> None:
        self.session.load_model(name_or_folder)

    def _job_event(self, event) -> None:
        if event.kind == "generate" and event.state in FINISHED:
            self.lyrics.ask_at_next_sync()
        if event.kind == "upsample" and len(self._mirror):
            path = self._mirror.current_path
            seconds = len(self._mirror.path_codes(path[-1])) / self._codes_per_second() if path else 0.0
            self.playback.job_event(event, path, seconds)

    # -- settings --------------------------------------------------------------------------------------
    def _use_defaults(self, settings: Settings) -> None:
        panel = self.generate_panel
        panel.branches.setValue(settings.branches)
        panel.seconds.setValue(settings.seconds)
        panel.temperature.setValue(settings.temperature)

    def apply_settings(self, settings: Settings) -> None:
        """Saved settings (from the settings dialog) take effect: the request defaults at once, the sound
        devices from now on, the compute device, precision and threads through the session."""
        self.session.apply_settings(settings)
        self._use_defaults(settings)
        if settings.output_device != self._output_device:
            self._output_device = settings.output_device
            self.playback.use_output_device(settings.output_device)
            self._show_player_status(self.playback.player.status())
        self._input_device = settings.input_device
        self.notice("Settings saved and applied.")

    # -- recording a riff ---------------------------------------------------------------------------
    def record_dialog(self) -> RecordDialog:
        """Record a riff, hear it and its VQ-VAE reconstruction, and start the song from it."""
        reconstruct = self.session.reconstruct if self._model is not None else None
        dialog = RecordDialog(self.playback.player, reconstruct=reconstruct, device=self._input_device,
                              parent=self)  # fmt: skip
        dialog.setObjectName("recordDialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.primeRequested.connect(self.prime_take)
        dialog.finished.connect(lambda _result: self._after_recording())
        self.playback.lend()  # the dialog's clicks and takes play through the player until it closes
        dialog.open()
        return dialog

    def _after_recording(self) -> None:
        self.playback.take_back()
        self._play_cursor()

    def prime_take(self, take) -> None:
        """Start the song from a recorded take (kept as a WAV in the state folder's recordings/)."""
        self.notice(f"Priming with the recording ({take.duration:.1f} s)…")
        future = self.session.prime_recording(take)
        self.bridge.when_done(future, lambda primed: self.notice(primed.notice("the recording")))

    def generate(self, mode: str, settings: GenerateSettings) -> None:
        selected = self.selected_take()
        if mode == "continue":
            parent = None
        elif selected is None:
            parent = self._mirror.current_id
        elif mode == "variations":
            parent = self._mirror.node(selected).parent_id
            if parent is None:
                self.show_error("The start of the song has no variations; generate after it instead.")
                return
        else:
            parent = selected
        self.session.generate(parent, settings.branches, settings.seconds, settings.seed, settings.sampling,
                              self._new_voice(parent))  # fmt: skip

    def _new_voice(self, parent: int | None):
        """The Conditioning panel's voice when it differs from the one in force at `parent`: new takes
        sing what the panel shows (a duet from there on); None lets them inherit it."""
        try:
            shown = self.conditioning_panel.conditioning()
        except ValueError:
            return None  # empty fields: nothing chosen, the song's own voice goes on
        at = self._mirror.current_id if parent is None else parent
        if at is None or at not in self._mirror or self._mirror.conditioning_at(at) == shown:
            return None
        return shown

    def swap(self, conditioning) -> None:
        node_id = self.selected_take()
        if node_id is None:
            self.show_error("Choose the take from which the new artist sings.")
            return
        self.session.swap(node_id, conditioning.artist, conditioning.genre, conditioning.lyrics,
                          conditioning.blend, conditioning.tempo)  # fmt: skip

    def change_voice_at(self, seconds: float) -> None:
        """A duet from the timeline: from `seconds` into the song shown on, new takes (as many and as long
        as the Generate panel says) sung by the voice in the Conditioning panel. A take under that moment
        is cut there first; the music that followed stays, a branch of its own."""
        leaf = self._mirror.current_id
        try:
            conditioning = self.conditioning_panel.conditioning()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        if leaf is None:
            self.show_error("Open or create a song first.")
            return
        settings = self.generate_panel.request_settings()
        future = self.session.change_voice_at(leaf, seconds, conditioning, settings.branches,
                                              settings.seconds, settings.seed, settings.sampling)  # fmt: skip
        label = voice_label(conditioning)
        self.bridge.when_done(
            future, lambda _handle: self.notice(f"From {seconds:.2f} s on, {label}: sampling the new takes…")
        )

    def upsample(self) -> None:
        from cocompose.service.requests import UpsampleRequest

        self.session.submit(UpsampleRequest())

    def open_project(self, path: str | Path) -> None:
        self.session.open_project(path)

    def close_project(self) -> None:
        self.session.close_project()

    def new_song_dialog(self) -> NewSongDialog:
        folder = Path(self.session.state.recent[0]).parent if self.session.state.recent else Path.home()
        model = self._model
        dialog = NewSongDialog(unused_path(folder / f"song{FILE_SUFFIX}"), model.artists if model else (),
                               model.genres if model else (), parent=self)  # fmt: skip
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # and focus goes back to the window
        dialog.accepted.connect(lambda: self._create_song(dialog))
        dialog.open()
        return dialog

    def _create_song(self, dialog: NewSongDialog) -> None:
        try:
            song = dialog.choice()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.session.new_project(song.path, song.conditioning, song.planned_seconds)

    def export_dialog(self) -> ExportDialog | None:
        if self._summary is None:
            self.show_error("Open or create a song first.")
            return None
        suggested = self._summary.path.with_suffix(".wav")
        dialog = ExportDialog(suggested, bool(self._model and self._model.can_upsample), parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        lufs = self.session.settings.loudness_lufs
        dialog.normalise.setChecked(lufs is not None)
        if lufs is not None:
            dialog.lufs.setValue(lufs)
        dialog.accepted.connect(lambda: self._export(dialog))
        dialog.open()
        return dialog

    def _export(self, dialog: ExportDialog) -> None:
        choice = dialog.choice()
        self.notice(f"Exporting to {choice.path.name}…")
        future = self.session.export(choice.path, choice.settings, choice.quality)
        self.bridge.when_done(future, lambda result: self.notice(f"Exported {result.path}"))

    def _choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open song", "", f"Songs (*{FILE_SUFFIX});;All files (*)")
        if path:
            self.open_project(path)

    def _choose_save_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save song as", "", f"Songs (*{FILE_SUFFIX})")
        if path:
            self.session.save_as(path)

    def _choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.load_model(folder)

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.session.state.existing_recent()
        for path in recent:
            action = new_action(self, Path(path).name, lambda path=path: self.open_project(path))
            action.setToolTip(path)
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(recent))

    def _offer_reopen(self) -> QMessageBox | None:
        """The last run died with a song open: offer to open it again (nothing in it was lost)."""
        path = self.session.state.open_project
        if not path or not Path(path).is_file() or self.session.project is not None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Reopen song",
                          f"Cocompose stopped while {Path(path).name} was open. Open it again?\n"
                          "Everything up to that moment was saved.",
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                          self)  # fmt: skip
        box.setObjectName("reopenBox")
        box.accepted.connect(lambda: self.open_project(path))
        box.open()
        return box

    # -- drag and drop: an audio file primes the song ------------------------------------------------
    @staticmethod
    def _dropped_audio(event: QDragEnterEvent | QDropEvent) -> Path | None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        paths = [Path(url.toLocalFile()) for url in urls if url.isLocalFile()]
        return next((p for p in paths if p.suffix.lower() in AUDIO_SUFFIXES), None)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_audio(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_audio(event)
        if path is not None:
            event.acceptProposedAction()
            self.prime(path)

    def prime(self, path: Path) -> None:
        self.notice(f"Priming with {path.name}…")
        future = self.session.prime(path)
        self.bridge.when_done(future, lambda primed: self.notice(primed.notice(path.name)))

    # -- the rest ------------------------------------------------------------------------------------
    def show_about(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, "About Cocompose", "", parent=self)
        box.setObjectName("aboutBox")
        box.setText(
            f"<b>Cocompose</b> {_app_version()}<br><br>"
            "Co-compose music with OpenAI's Jukebox: sample several continuations, "
            "pick one by ear, keep extending."
        )
        # open(), not exec(): window-modal without a nested event loop that would block the app (and tests).
        box.open()
        return box

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._shut:
            self._shut = True
            self._memory_timer.stop()
            for dialog in self.findChildren(RecordDialog):
                dialog.reject()  # lets go of the input device (a take not primed from is not kept)
            self.playback.shutdown()
            # Cancels what runs (every drawn code is already saved) and closes the file: a moment.
            self.session.shutdown()
        super().closeEvent(event)
