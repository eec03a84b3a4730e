"""The main window. For now an honest shell: menus, a placeholder, and the audio status."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QWidget

from cocompose.audio_io import AudioStatus

PLACEHOLDER_TEXT = (
    "Cocompose is an early shell.\n\nThe tree of takes, sampling with Jukebox and playback are on their way."
)


def _app_version() -> str:
    try:
        return version("cocompose")
    except PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "(not installed)"


class MainWindow(QMainWindow):
    def __init__(self, audio: AudioStatus, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cocompose")
        self.resize(960, 640)

        placeholder = QLabel(PLACEHOLDER_TEXT)
        placeholder.setObjectName("placeholder")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setCentralWidget(placeholder)

        self._build_menus()

        # A permanent widget, not showMessage(): menu hover tips would overwrite a plain message.
        audio_label = QLabel(audio.summary())
        audio_label.setObjectName("audioStatus")
        self.statusBar().addWidget(audio_label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        # Spelled out: QKeySequence.StandardKey.Quit is empty on Windows.
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        about_action = QAction("&About Cocompose", self)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(about_action)

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
