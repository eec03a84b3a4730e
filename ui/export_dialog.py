"""Export the song: file, format, sample rate, loudness target, fade-out and quality (the fast preview,
or the upsampled render). The dialog only collects the choice; the window hands it to the session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from cocompose.export import FORMATS, ExportSettings

RATES = (None, 44_100, 48_000, 32_000, 24_000, 22_050, 16_000)  # None: the song's own rate
QUALITIES = (("preview", "Preview (fast decoder)"), ("upsampled", "Upsampled (full quality, slow)"))


@dataclass(frozen=True)
class ExportChoice:
    path: Path
    settings: ExportSettings
    quality: str


class ExportDialog(QDialog):
    def __init__(self, suggested: Path, can_upsample: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="exportDialog")
        self.setWindowTitle("Export")
        self.path = QLineEdit(str(suggested), objectName="exportPath")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)

        self.format = QComboBox(objectName="exportFormat")
        for name in FORMATS:
            self.format.addItem(name.upper(), name)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.rate = QComboBox(objectName="exportRate")
        for rate in RATES:
            self.rate.addItem("as the song" if rate is None else f"{rate} Hz", rate)
        self.normalise = QCheckBox("Normalise to", objectName="exportNormalise", checked=True)
        self.lufs = QDoubleSpinBox(objectName="exportLufs", minimum=-40.0, maximum=-5.0, value=-14.0,
                                   decimals=1, suffix=" LUFS")  # fmt: skip
        self.normalise.toggled.connect(self.lufs.setEnabled)
        loudness_row = QHBoxLayout()
        loudness_row.addWidget(self.normalise)
        loudness_row.addWidget(self.lufs, 1)
        self.fade = QDoubleSpinBox(objectName="exportFade", minimum=0.0, maximum=30.0, value=0.0,
                                   decimals=1, suffix=" s")  # fmt: skip
        self.quality = QComboBox(objectName="exportQuality")
        for value, text in QUALITIES:
            if value == "upsampled" and not can_upsample:
                text += " — this model has no upsamplers"
            self.quality.addItem(text, value)

        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("File", path_row)
        form.addRow("Format", self.format)
        form.addRow("Sample rate", self.rate)
        form.addRow("Loudness", loudness_row)
        form.addRow("Fade out", self.fade)
        form.addRow("Quality", self.quality)
        form.addRow(buttons)
        self._select_format_of(Path(suggested))

    def _select_format_of(self, path: Path) -> None:
        for name, fmt in FORMATS.items():
            if path.suffix.lower() in fmt.extensions:
                self.format.setCurrentIndex(self.format.findData(name))

    def _format_changed(self) -> None:
        """Keep the file name's extension in step with the chosen format."""
        name = self.format.currentData()
        path = Path(self.path.text())
        if path.suffix.lower() not in FORMATS[name].extensions:
            self.path.setText(str(path.with_suffix(FORMATS[name].extensions[0])))

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if chosen:
            self.path.setText(chosen)
            self._select_format_of(Path(chosen))

    def choice(self) -> ExportChoice:
        settings = ExportSettings(
            format=self.format.currentData(),
            sample_rate=self.rate.currentData(),
            loudness_lufs=self.lufs.value() if self.normalise.isChecked() else None,
            fade_out_s=self.fade.value(),
        )
        return ExportChoice(Path(self.path.text()).expanduser(), settings, self.quality.currentData())
