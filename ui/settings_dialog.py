"""Settings: compute device and precision, CPU threads, audio output and input, the defaults of a new
generation request, and the export loudness target.

Wiring (main window):

    dialog = SettingsDialog(parent=self)           # reads settings.json from the config folder
    dialog.settingsChanged.connect(self.apply_settings)   # a cocompose.settings.Settings
    dialog.open()

On OK the settings are saved (atomically; keys this version does not know are kept) and only then
`settingsChanged` carries them; if they cannot be saved the dialog says why and stays open. Cancel
changes nothing. What the device and precision come to on this machine is
`cocompose.settings.resolve_compute(settings)` (call it off the GUI thread: it imports torch). Audio
devices are stored by name (PortAudio's numbers change between runs); None means the system default,
and a saved device that is not connected now is kept and shown as such.

The list of compute devices asks torch, which takes seconds to import the first time, so it is probed
on a worker thread: "Automatic" and "CPU" are offered at once and the GPUs appear when the probe answers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cocompose.audio_io import AudioDevice, AudioUnavailable, list_devices
from cocompose.service.requests import MAX_BRANCHES, MAX_SECONDS
from cocompose.settings import (
    LUFS_RANGE,
    MAX_THREADS,
    PRECISIONS,
    DeviceChoice,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
)
from ui.refcount_guard import make_singletons_immortal

make_singletons_immortal()

PRECISION_TEXT = {
    "float32": "float32 (full precision, slowest)",
    "bfloat16": "bfloat16 (GPU or CPU, about half the memory)",
    "float16": "float16 (GPU only, about half the memory)",
}
BEFORE_PROBE = (DeviceChoice("auto", "Automatic (looking for GPUs…)"), DeviceChoice("cpu", "CPU"))


class _ProbeRelay(QObject):
    answered = Signal(object)  # tuple[DeviceChoice, ...], or the error text


class SettingsDialog(QDialog):
    """settings: what to show (default: the saved settings, whose warnings are shown too). config_dir:
    where settings.json lives (default: the user's config folder). devices: the sound devices to offer
    (default: cocompose.audio_io.list_devices(); none is handled). compute_choices: the compute devices
    (default: cocompose.settings.device_choices() on a worker thread)."""

    settingsChanged = Signal(object)  # Settings, saved

    def __init__(
        self,
        settings: Settings | None = None,
        parent: QWidget | None = None,
        *,
        config_dir: Path | None = None,
        devices: Sequence[AudioDevice] | None = None,
        compute_choices: Sequence[DeviceChoice] | None = None,
    ) -> None:
        super().__init__(parent, objectName="settingsDialog")
        self.setWindowTitle("Settings")
        self._config_dir = config_dir
        warnings: tuple[str, ...] = ()
        if settings is None:
            loaded = load_settings(config_dir)
            settings, warnings = loaded.settings, loaded.warnings
        self.settings = settings  # the last saved (or given) settings; unknown keys ride along

        # Compute.
        self.device = QComboBox(objectName="computeDevice")
        self._device_values: list[str] = []
        self.precision = QComboBox(objectName="precision")
        for value in PRECISIONS:
            self.precision.addItem(PRECISION_TEXT[value])
        self.threads = QSpinBox(objectName="cpuThreads", minimum=0, maximum=MAX_THREADS)
        self.threads.setSpecialValueText("automatic")
        self.threads.setToolTip(f"This machine has {os.cpu_count()} CPU cores")

        # Audio.
        self.output_device = QComboBox(objectName="outputDevice")
        self.input_device = QComboBox(objectName="inputDevice")
        self._output_values: list[str | None] = []
        self._input_values: list[str | None] = []
        self.audio_note = QLabel(objectName="audioNote", wordWrap=True)
        self._devices, why = self._list_devices(devices)
        if why:
            self.audio_note.setText(f"No audio devices: {why}. The app still composes and exports; it cannot "
                                    "play or record until a device is available.")  # fmt: skip

        # New requests and export.
        self.branches = QSpinBox(objectName="defaultBranches", minimum=1, maximum=MAX_BRANCHES)
        self.seconds = QDoubleSpinBox(objectName="defaultSeconds", minimum=0.1, maximum=MAX_SECONDS,
                                      decimals=1, singleStep=0.5, suffix=" s")  # fmt: skip
        self.temperature = QDoubleSpinBox(objectName="defaultTemperature", minimum=0.01, maximum=10.0,
                                          decimals=2, singleStep=0.01)  # fmt: skip
        self.normalise = QCheckBox("Normalise to", objectName="normaliseLoudness")
        self.lufs = QDoubleSpinBox(objectName="loudnessTarget", minimum=LUFS_RANGE[0], maximum=LUFS_RANGE[1],
                                   decimals=1, suffix=" LUFS")  # fmt: skip
        self.normalise.toggled.connect(self.lufs.setEnabled)

        self.warning_label = QLabel("\n".join(warnings), objectName="settingsWarnings", wordWrap=True)
        self.error_label = QLabel(objectName="settingsError", wordWrap=True)
        self.error_label.setStyleSheet("color: #c0392b")
        for label in (self.warning_label, self.error_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        compute = QFormLayout()
        compute.addRow("Device", self.device)
        compute.addRow("Precision", self.precision)
        compute.addRow("CPU threads", self.threads)
        audio = QFormLayout()
        audio.addRow("Output", self.output_device)
        audio.addRow("Input", self.input_device)
        audio.addRow(self.audio_note)
        requests = QFormLayout()
        requests.addRow("Branches", self.branches)
        requests.addRow("Length", self.seconds)
        requests.addRow("Temperature", self.temperature)
        loudness = QHBoxLayout()
        loudness.addWidget(self.normalise)
        loudness.addWidget(self.lufs, 1)
        requests.addRow("Export loudness", loudness)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.setObjectName("restoreDefaults")
        restore.clicked.connect(lambda: self.show_settings(replace(Settings(), extra=self.settings.extra)))
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)

        layout = QVBoxLayout(self)
        for title, form in (("Compute", compute), ("Audio", audio), ("New takes and export", requests)):
            box = QGroupBox(title)
            box.setLayout(form)
            layout.addWidget(box)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.warning_label.setVisible(bool(warnings))
        self.audio_note.setVisible(bool(why))

        self._choices: tuple[DeviceChoice, ...] = tuple(compute_choices or BEFORE_PROBE)
        self.probe_done = compute_choices is not None  # the compute devices are known (not only guessed)
        self.show_settings(settings)
        if not self.probe_done:
            self._probe()

    # --- filling the widgets -------------------------------------------------------------------------

    @staticmethod
    def _list_devices(devices: Sequence[AudioDevice] | None) -> tuple[list[AudioDevice], str]:
        if devices is None:
            try:
                devices = list_devices()
            except AudioUnavailable as exc:
                return [], str(exc)
        if not devices:
            return [], "no sound device found"
        return list(devices), ""

    def show_settings(self, settings: Settings) -> None:
        """Put `settings` into the widgets (nothing is saved until OK)."""
        self._fill_devices(settings.device)
        self.precision.setCurrentIndex(PRECISIONS.index(settings.precision))
        self.threads.setValue(settings.cpu_threads)
        self._output_values = self._fill_audio(self.output_device, settings.output_device, "output")
        self._input_values = self._fill_audio(self.input_device, settings.input_device, "input")
        self.branches.setValue(settings.branches)
        self.seconds.setValue(settings.seconds)
        self.temperature.setValue(settings.temperature)
        self.normalise.setChecked(settings.loudness_lufs is not None)
        self.lufs.setValue(settings.loudness_lufs if settings.loudness_lufs is not None else -14.0)
        self.lufs.setEnabled(settings.loudness_lufs is not None)

    def _fill_devices(self, wanted: str) -> None:
        values = [c.value for c in self._choices]
        labels = [c.label for c in self._choices]
        if wanted == "cuda" and "cuda:0" in values:
            wanted = "cuda:0"
        if wanted not in values:
            values.append(wanted)
            missing = f"{wanted} (not found on this machine: the CPU is used)"
            labels.append(missing if self.probe_done else wanted)
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItems(labels)
        self.device.setCurrentIndex(values.index(wanted))
        self.device.blockSignals(False)
        self._device_values = values

    def _fill_audio(self, combo: QComboBox, wanted: str | None, direction: str) -> list[str | None]:
        """Items: the system default, then each device with channels in that direction. The combo's own
        item data is never read back (see ui/refcount_guard): the values are kept in a list."""
        values: list[str | None] = [None]
        labels = ["System default"]
        for device in self._devices:
            channels = device.max_output_channels if direction == "output" else device.max_input_channels
            if channels > 0 and device.name not in values:
                values.append(device.name)
                labels.append(f"{device.name} ({device.host_api}, {channels} {direction} channels)")
        if wanted not in values:
            values.append(wanted)
            labels.append(f"{wanted} (not connected now)")
        combo.clear()
        combo.addItems(labels)
        combo.setCurrentIndex(values.index(wanted))
        return values

    # --- the compute probe ---------------------------------------------------------------------------

    def _probe(self) -> None:
        relay = _ProbeRelay(self)
        relay.answered.connect(self._probed, Qt.ConnectionType.QueuedConnection)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cocompose-device-probe")

        def run() -> None:
            from cocompose.settings import device_choices

            try:
                answer: object = device_choices()
            except Exception as exc:  # a broken torch install must not break the dialog
                answer = f"cannot list GPUs: {exc}"
            try:
                relay.answered.emit(answer)
            except RuntimeError:  # the dialog was closed and deleted meanwhile
                pass

        executor.submit(run)
        executor.shutdown(wait=False)

    def _probed(self, answer: object) -> None:
        wanted = self._device_values[self.device.currentIndex()]
        if isinstance(answer, str):
            self._choices = (DeviceChoice("auto", "Automatic"), DeviceChoice("cpu", "CPU"))
            self.device.setToolTip(answer)
        else:
            self._choices = tuple(answer)
        self.probe_done = True
        self._fill_devices(wanted)

    # --- OK ------------------------------------------------------------------------------------------

    def values(self) -> Settings:
        """The settings as the widgets show them (keys this version does not know kept from before)."""
        return replace(
            self.settings,
            device=self._device_values[self.device.currentIndex()],
            precision=PRECISIONS[self.precision.currentIndex()],
            cpu_threads=self.threads.value(),
            output_device=self._output_values[self.output_device.currentIndex()],
            input_device=self._input_values[self.input_device.currentIndex()],
            branches=self.branches.value(),
            seconds=self.seconds.value(),
            temperature=self.temperature.value(),
            loudness_lufs=self.lufs.value() if self.normalise.isChecked() else None,
        )

    def accept(self) -> None:
        chosen = self.values()
        try:
            save_settings(chosen, self._config_dir)
        except (SettingsError, ValueError) as exc:
            self.error_label.setText(f"{exc}. Nothing was changed; fix it or press Cancel.")
            return
        self.settings = chosen
        self.error_label.setText("")
        self.settingsChanged.emit(chosen)
        super().accept()
