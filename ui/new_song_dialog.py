"""A new song: where to keep it, who sings it in what style, and about how long it will be (the planned
length tells the prior where in the song it is). Only collects the choice; the window creates the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
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

from cocompose.song import Conditioning
from cocompose.store import FILE_SUFFIX
from ui.conditioning_panel import NamePicker


@dataclass(frozen=True)
class NewSong:
    path: Path
    conditioning: Conditioning
    planned_seconds: float


class NewSongDialog(QDialog):
    def __init__(self, suggested: Path, artists=(), genres=(), parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="newSongDialog")
        self.setWindowTitle("New song")
        self.path = QLineEdit(str(suggested), objectName="songPath")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        self.artist = NamePicker("newArtist")
        self.artist.set_names(artists)
        self.genre = NamePicker("newGenre")
        self.genre.set_names(genres)
        if artists:
            self.artist.setText(artists[0])
        if genres:
            self.genre.setText(genres[0])
        self.seconds = QDoubleSpinBox(objectName="plannedSeconds", minimum=1.0, maximum=3600.0, value=60.0,
                                      decimals=0, suffix=" s")  # fmt: skip
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("File", path_row)
        form.addRow("Artist", self.artist)
        form.addRow("Genre", self.genre)
        form.addRow("Planned length", self.seconds)
        form.addRow(buttons)

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "New song", self.path.text(), f"Songs (*{FILE_SUFFIX})")
        if chosen:
            self.path.setText(chosen)

    def choice(self) -> NewSong:
        """Raises ValueError naming what is missing."""
        path = Path(self.path.text().strip()).expanduser()
        artist, genre = self.artist.text().strip(), self.genre.text().strip()
        if not self.path.text().strip():
            raise ValueError("Choose where to keep the song.")
        if not artist or not genre:
            raise ValueError("Choose an artist and a genre.")
        if not path.suffix:
            path = path.with_suffix(FILE_SUFFIX)
        return NewSong(path, Conditioning(artist, genre), self.seconds.value())
