"""Record a riff: pick an input, watch the meter, count in, record, stop, trim, listen, prime from it.

Wiring (main window):

    dialog = RecordDialog(player, reconstruct=session.reconstruct, parent=window)
    dialog.primeRequested.connect(lambda take: prime_from(take))   # a cocompose.recording.Take
    dialog.open()

`reconstruct(audio, sample_rate) -> (audio, sample_rate)` returns the VQ-VAE's reconstruction of the
(trimmed) take; it runs on a worker thread, so it may take its time. Without it the button is disabled.
To prime from a file, save the take with `take.save_wav(path)` (atomic). `player` is the app's Player:
the count-in clicks and both listening buttons play through it; None leaves them silent/disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cocompose.audio_io import AudioDevice, AudioUnavailable, list_devices
from cocompose.playback import AudioSource, Player
from cocompose.recording import CountIn, Recorder, RecorderState, Take

Reconstruct = Callable[[np.ndarray, int], tuple[np.ndarray, int]]

METER_FLOOR_DB = -60.0
REFRESH_MS = 33


class _Relay(QObject):
    reconstructed = Signal(object)  # (audio, rate) or the exception


class RecordDialog(QDialog):
    primeRequested = Signal(object)  # the trimmed Take

    def __init__(
        self,
        player: Player | None,
        reconstruct: Reconstruct | None = None,
        device: int | str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a riff")
        self._player = player
        self._reconstruct = reconstruct
        self._recorder: Recorder | None = None
        self._take: Take | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cocompose-reconstruct")
        self._relay = _Relay(self)
        self._relay.reconstructed.connect(self._reconstruction_ready)
        self._note = ""
        self._requested = device

        self.device_combo = QComboBox(objectName="inputDevice")
        self._devices = self._input_devices()
        for item in self._devices:
            self.device_combo.addItem(f"{item.name} ({item.host_api})")
        self.meter = QProgressBar(objectName="levelMeter", textVisible=False)
        self.meter.setRange(0, round(-METER_FLOOR_DB * 10))
        self.meter_label = QLabel("-inf dBFS", objectName="levelLabel")
        self.beats = QSpinBox(objectName="countInBeats", minimum=0, maximum=16, value=4)
        self.bpm = QSpinBox(objectName="countInTempo", minimum=20, maximum=400, value=120, suffix=" bpm")
        self.record_button = QPushButton("Record", objectName="recordButton")
        self.stop_button = QPushButton("Stop", objectName="stopButton", enabled=False)
        self.trim_start = QDoubleSpinBox(objectName="trimStart", decimals=3, suffix=" s", singleStep=0.05)
        self.trim_end = QDoubleSpinBox(objectName="trimEnd", decimals=3, suffix=" s", singleStep=0.05)
        self.play_take_button = QPushButton("Play recording", objectName="playTake")
        self.play_reconstruction_button = QPushButton("Play reconstruction", objectName="playReconstruction")
        self.prime_button = QPushButton("Prime from it", objectName="primeButton")
        self.status_label = QLabel(objectName="recordStatus", wordWrap=True)

        form = QFormLayout()
        form.addRow("Input", self.device_combo)
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.meter_label)
        form.addRow("Level", meter_row)
        count_row = QHBoxLayout()
        count_row.addWidget(self.beats)
        count_row.addWidget(QLabel("beats at"))
        count_row.addWidget(self.bpm)
        form.addRow("Count-in", count_row)
        trim_row = QHBoxLayout()
        trim_row.addWidget(self.trim_start)
        trim_row.addWidget(QLabel("to"))
        trim_row.addWidget(self.trim_end)
        form.addRow("Keep", trim_row)
        buttons = QHBoxLayout()
        for button in (self.record_button, self.stop_button, self.play_take_button):
            buttons.addWidget(button)
        buttons.addWidget(self.play_reconstruction_button)
        buttons.addStretch(1)
        buttons.addWidget(self.prime_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)

        self.record_button.clicked.connect(self.start_recording)
        self.stop_button.clicked.connect(self.stop_recording)
        self.play_take_button.clicked.connect(self.play_take)
        self.play_reconstruction_button.clicked.connect(self.play_reconstruction)
        self.prime_button.clicked.connect(self.prime)
        self.trim_start.valueChanged.connect(self._trim_changed)
        self.trim_end.valueChanged.connect(self._trim_changed)

        chosen = self._index_of(device)
        self.device_combo.setCurrentIndex(chosen)
        self.device_combo.currentIndexChanged.connect(self._use_device)
        self._use_device(chosen)
        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._update_take_controls()

    # --- devices -------------------------------------------------------------------------------------

    @staticmethod
    def _input_devices() -> list[AudioDevice]:
        try:
            return [d for d in list_devices() if d.max_input_channels > 0]
        except AudioUnavailable:
            return []

    def _index_of(self, device: int | str | None) -> int:
        for row, item in enumerate(self._devices):
            if device == item.index or (isinstance(device, str) and device in item.name):
                return row
        return -1 if device is not None else 0

    def _use_device(self, row: int) -> None:
        if self._recorder is not None:
            self._recorder.close()
        # An unknown device asked for is passed on as asked, so the recorder names it in its message.
        wanted = self._devices[row].index if 0 <= row < len(self._devices) else self._requested
        self._recorder = Recorder(wanted)
        self._recorder.open()
        self.refresh()

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    # --- recording -----------------------------------------------------------------------------------

    def start_recording(self) -> None:
        if self._recorder is None:
            return
        count_in = CountIn(beats=self.beats.value(), bpm=float(self.bpm.value()))
        status = self._recorder.start(count_in)
        if status.state in (RecorderState.COUNTING_IN, RecorderState.RECORDING):
            self._note = ""
            if self._player is not None and count_in.beats and status.sample_rate:
                self._player.load(AudioSource(status.sample_rate, count_in.click_track(status.sample_rate)))
                self._player.play()
        self.refresh()

    def stop_recording(self) -> None:
        if self._recorder is None:
            return
        take = self._recorder.stop()
        if take is not None:
            self._take = take
            for spin in (self.trim_start, self.trim_end):
                spin.blockSignals(True)
                spin.setRange(0.0, take.duration)
                spin.blockSignals(False)
            self.trim_start.setValue(0.0)
            self.trim_end.setValue(take.duration)
            self._note = f"recorded {take.duration:.2f} s"
        else:
            self._note = "nothing was recorded"
        self._update_take_controls()
        self.refresh()

    def take(self) -> Take | None:
        """The take as trimmed by the spin boxes, or None before anything was recorded."""
        if self._take is None:
            return None
        start, end = self.trim_start.value(), self.trim_end.value()
        if end >= self.trim_end.maximum():
            end = None  # the spin box rounds to milliseconds, the take need not end on one
        try:
            return self._take.trimmed(start, end)
        except ValueError as exc:
            self._note = str(exc)
            return None

    def _trim_changed(self) -> None:
        self._update_take_controls()

    def _update_take_controls(self) -> None:
        has_take = self._take is not None and self.trim_start.value() < self.trim_end.value()
        for widget in (self.trim_start, self.trim_end):
            widget.setEnabled(self._take is not None)
        self.play_take_button.setEnabled(has_take and self._player is not None)
        self.play_reconstruction_button.setEnabled(
            has_take and self._player is not None and self._reconstruct is not None
        )
        self.prime_button.setEnabled(has_take)

    # --- listening and priming -----------------------------------------------------------------------

    def play_take(self) -> None:
        take = self.take()
        if take is not None and self._player is not None:
            self._player.load(take.source())
            self._player.play()

    def play_reconstruction(self) -> None:
        take = self.take()
        if take is None or self._reconstruct is None:
            return
        self._note = "reconstructing…"
        self.play_reconstruction_button.setEnabled(False)
        self._worker.submit(self._run_reconstruction, self._reconstruct, take)

    def _run_reconstruction(self, reconstruct: Reconstruct, take: Take) -> None:
        try:
            result: object = reconstruct(take.audio.copy(), take.sample_rate)
        except Exception as exc:  # the engine's failure is shown in the dialog, not raised
            result = exc
        self._relay.reconstructed.emit(result)

    def _reconstruction_ready(self, result: object) -> None:
        self._update_take_controls()
        if isinstance(result, Exception):
            self._note = f"reconstruction failed: {result}"
            return
        try:
            audio, rate = result  # type: ignore[misc]
            source = AudioSource(int(rate), np.asarray(audio, np.float32).reshape(-1))
        except (TypeError, ValueError) as exc:
            self._note = f"reconstruction failed: it returned no usable audio ({exc})"
            return
        self._note = f"playing the reconstruction ({source.duration:.2f} s)"
        if self._player is not None:
            self._player.load(source)
            self._player.play()

    def prime(self) -> None:
        take = self.take()
        if take is None:
            return
        self.primeRequested.emit(take)
        self.accept()

    # --- display and closing -------------------------------------------------------------------------

    def refresh(self) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        level = recorder.take_level()
        db = max(METER_FLOOR_DB, level.peak_dbfs)
        self.meter.setValue(round((db - METER_FLOOR_DB) * 10))
        self.meter_label.setText(f"{level.peak_dbfs:.1f} dBFS" if level.peak > 0 else "-inf dBFS")
        status = recorder.status()
        if status.state is RecorderState.FAILED and status.seconds > 0:
            self.stop_recording()  # the device failed mid-take: keep what was played
            self._note = f"{status.message}; the {status.seconds:.1f} s recorded before it were kept"
            status = recorder.status()
        busy = status.state in (RecorderState.COUNTING_IN, RecorderState.RECORDING)
        usable = status.state is not RecorderState.UNAVAILABLE
        self.record_button.setEnabled(usable and not busy)
        self.stop_button.setEnabled(busy)
        self.device_combo.setEnabled(not busy)
        if status.state is RecorderState.COUNTING_IN:
            beat = 60.0 / max(1, self.bpm.value())
            text = f"counting in… {int(status.count_in_left / beat) + 1}"
        elif status.state is RecorderState.RECORDING:
            text = f"recording {status.seconds:.1f} s"
        else:
            text = self._note if self._note.startswith(status.message) else status.message or self._note
        self.status_label.setText(text)

    def done(self, result: int) -> None:
        self._timer.stop()
        if self._recorder is not None:
            self._recorder.close()
        self._worker.shutdown(wait=False, cancel_futures=True)
        super().done(result)
