"""Who sings and in what style: artist and genre pickers with search, a blend of two artists, the lyrics,
and "Change from this take" (the new conditioning applies from the take under the cursor on: a duet).

The official models know thousands of artists, so a picker is a line edit with a completer that matches
anywhere in the name, ignoring case ("beat" finds "the_beatles"), over a plain string list model.
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCompleter,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cocompose.song import ArtistBlend, Conditioning


class NamePicker(QLineEdit):
    """A name typed with completion from a (long) list; `names_matching` is the same search, for tests."""

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName=object_name)
        self._names = QStringListModel(self)
        completer = QCompleter(self._names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setMaxVisibleItems(12)
        self.setCompleter(completer)
        self.setClearButtonEnabled(True)

    def set_names(self, names: list[str] | tuple[str, ...]) -> None:
        self._names.setStringList(list(names))

    def names(self) -> list[str]:
        return self._names.stringList()

    def names_matching(self, text: str) -> list[str]:
        """What the completer offers for `text`."""
        completer = self.completer()
        completer.setCompletionPrefix(text)
        found = []
        for row in range(completer.completionCount()):
            completer.setCurrentRow(row)
            found.append(completer.currentCompletion())
        return found


class ConditioningPanel(QWidget):
    # The conditioning from the take under the cursor on (artist, genre, lyrics and blend).
    swapRequested = Signal(object)  # Conditioning
    problem = Signal(str)  # what is wrong with the fields, for the window's message area

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.artist = NamePicker("artist")
        self.genre = NamePicker("genre")
        self.blend_artist = NamePicker("blendArtist")
        self.blend_artist.setPlaceholderText("none")
        self.blend = QSlider(Qt.Orientation.Horizontal, objectName="blend", minimum=0, maximum=100)
        self.blend_label = QLabel("0%", objectName="blendLabel")
        self.blend.valueChanged.connect(lambda value: self.blend_label.setText(f"{value}%"))
        self.lyrics = QPlainTextEdit(objectName="lyrics")
        self.lyrics.setPlaceholderText("Lyrics (for the lyric models)")
        self.swap_button = QPushButton("&Change from this take", objectName="swapButton")
        self.swap_button.setToolTip("This artist, genre and lyrics from the take under the cursor on")
        self.swap_button.clicked.connect(self._request_swap)

        form = QFormLayout()
        form.addRow("Artist", self.artist)
        form.addRow("Genre", self.genre)
        form.addRow("Blend with", self.blend_artist)
        form.addRow(self.blend_label, self.blend)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.lyrics, 1)
        layout.addWidget(self.swap_button)

    def set_names(self, artists: tuple[str, ...], genres: tuple[str, ...]) -> None:
        self.artist.set_names(artists)
        self.blend_artist.set_names(artists)
        self.genre.set_names(genres)

    def show_conditioning(self, conditioning: Conditioning) -> None:
        """Fill the fields from the conditioning in force at a take."""
        self.artist.setText(conditioning.artist)
        self.genre.setText(conditioning.genre)
        self.lyrics.setPlainText(conditioning.lyrics)
        blend = conditioning.blend
        self.blend_artist.setText(blend.other_artist if blend else "")
        self.blend.setValue(round(100 * blend.weight) if blend else 0)

    def conditioning(self) -> Conditioning:
        """The fields as a Conditioning. Raises ValueError naming what is missing."""
        artist, genre = self.artist.text().strip(), self.genre.text().strip()
        if not artist or not genre:
            raise ValueError("Choose an artist and a genre first.")
        other = self.blend_artist.text().strip()
        blend = ArtistBlend(other, self.blend.value() / 100) if other and self.blend.value() > 0 else None
        return Conditioning(artist, genre, self.lyrics.toPlainText(), blend)

    def _request_swap(self) -> None:
        try:
            conditioning = self.conditioning()
        except ValueError as exc:
            self.problem.emit(str(exc))
            return
        self.swapRequested.emit(conditioning)
