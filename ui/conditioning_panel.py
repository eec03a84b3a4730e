"""Who sings and in what style: artist and genre pickers with search, a blend of two artists, the tempo
(for a model with a beat clock), the lyrics, and "Change from this take" (the new conditioning applies from
the take under the cursor on: a duet).

For a lyric model the lyrics editor also shows how far the song up to the take under the cursor has sung
(from the model's lyric alignment, `AppSession.lyric_progress`): the characters sung so far are shaded and
a line under the editor counts them; while the song plays, the character sung at the playhead is
underlined. Both are extra selections drawn over the text, which is never edited for them.

The official models know thousands of artists, so a picker is a line edit with a completer that matches
anywhere in the name, ignoring case ("beat" finds "the_beatles"), over a plain string list model.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from cocompose.song import ArtistBlend, Conditioning
from cocompose.song.records import Tempo

SUNG_BACKGROUND = QColor(255, 200, 80, 90)  # a light shade: the text stays readable over it
PLAYHEAD_UNDERLINE = QColor(200, 60, 20)
NO_LYRICS_MODEL = "This model sings no lyrics."
FALLBACK_TEMPO = Tempo(120.0, 4)  # shown for a genre whose usual tempo the model does not know


def utf16_position(text: str, offset: int) -> int:
    """The document position of `text[offset]`: Qt counts UTF-16 units, so a character outside the BMP
    (an emoji) takes two."""
    return len(text[:offset].encode("utf-16-le")) // 2


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
        self.lyrics_progress = QLabel(objectName="lyricsProgress", wordWrap=True)
        self._progress: Any = None  # engine.api.LyricProgress of the take shown, None: no lyrics model
        self._progress_known = False  # a progress (or "no lyrics") was given for the take shown
        self._playhead_code: int | None = None
        self.lyrics.textChanged.connect(self._paint_progress)
        self.swap_button = QPushButton("&Change from this take", objectName="swapButton")
        self.swap_button.setToolTip(
            "Relabel: the take under the cursor and what follows it are upsampled with this voice. New "
            "takes sing the voice shown here anyway: Generate, or right-click the timeline for a duet."
        )
        self.swap_button.clicked.connect(self._request_swap)

        # Tempo: unticked, the genre's usual tempo (shown greyed); ticked, the musician's own.
        self.tempo_set = QCheckBox("Tempo", objectName="tempoSet")
        self.tempo_set.setToolTip("Untick to play each genre at its usual tempo")
        self.tempo = QDoubleSpinBox(objectName="tempo", decimals=1)
        self.tempo.setRange(Tempo.MIN_BPM, Tempo.MAX_BPM)
        self.tempo.setSuffix(" bpm")
        self.beats_per_bar = QSpinBox(objectName="beatsPerBar", minimum=1, maximum=Tempo.MAX_BEATS_PER_BAR)
        self.beats_per_bar.setSuffix(" per bar")
        self.tempo_row = QWidget(objectName="tempoRow")
        beat = QHBoxLayout(self.tempo_row)
        beat.setContentsMargins(0, 0, 0, 0)
        beat.addWidget(self.tempo)
        beat.addWidget(self.beats_per_bar)
        self._usual_tempi: dict[str, Tempo] | None = None  # None: the model has no beat clock
        self._shown_tempo: Tempo | None = None  # kept for a model without a clock, so a swap keeps it
        self.tempo_set.toggled.connect(self._show_tempo_state)
        self.genre.textChanged.connect(self._show_tempo_state)

        form = QFormLayout()
        form.addRow("Artist", self.artist)
        form.addRow("Genre", self.genre)
        form.addRow("Blend with", self.blend_artist)
        form.addRow(self.blend_label, self.blend)
        form.addRow(self.tempo_set, self.tempo_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.lyrics, 1)
        layout.addWidget(self.lyrics_progress)
        layout.addWidget(self.swap_button)
        self.set_beat_clock(None)  # no model yet

    def set_names(self, artists: tuple[str, ...], genres: tuple[str, ...]) -> None:
        self.artist.set_names(artists)
        self.blend_artist.set_names(artists)
        self.genre.set_names(genres)

    def set_beat_clock(self, genre_tempi: tuple[tuple[str, float, int], ...] | None) -> None:
        """The model's usual tempo per genre when it has a beat clock (the tempo row shows), else None."""
        clock = genre_tempi is not None
        self._usual_tempi = {g.lower(): Tempo(b, n) for g, b, n in genre_tempi} if clock else None
        self.tempo_set.setVisible(genre_tempi is not None)
        self.tempo_row.setVisible(genre_tempi is not None)
        self._show_tempo_state()

    def usual_tempo(self) -> Tempo:
        """What the genre in the field plays at when no tempo is set."""
        return (self._usual_tempi or {}).get(self.genre.text().strip().lower(), FALLBACK_TEMPO)

    def _show_tempo_state(self) -> None:
        own = self.tempo_set.isChecked()
        self.tempo.setEnabled(own)
        self.beats_per_bar.setEnabled(own)
        if not own:
            usual = self.usual_tempo()
            self.tempo.setValue(usual.bpm)
            self.beats_per_bar.setValue(usual.beats_per_bar)

    def show_conditioning(self, conditioning: Conditioning) -> None:
        """Fill the fields from the conditioning in force at a take."""
        self.artist.setText(conditioning.artist)
        self.genre.setText(conditioning.genre)
        self.lyrics.setPlainText(conditioning.lyrics)
        blend = conditioning.blend
        self.blend_artist.setText(blend.other_artist if blend else "")
        self.blend.setValue(round(100 * blend.weight) if blend else 0)
        tempo = self._shown_tempo = conditioning.tempo
        self.tempo_set.setChecked(tempo is not None)
        if tempo is not None:
            self.tempo.setValue(tempo.bpm)
            self.beats_per_bar.setValue(tempo.beats_per_bar)
        self._show_tempo_state()

    def conditioning(self) -> Conditioning:
        """The fields as a Conditioning. Raises ValueError naming what is missing."""
        artist, genre = self.artist.text().strip(), self.genre.text().strip()
        if not artist or not genre:
            raise ValueError("Choose an artist and a genre first.")
        other = self.blend_artist.text().strip()
        blend = ArtistBlend(other, self.blend.value() / 100) if other and self.blend.value() > 0 else None
        return Conditioning(artist, genre, self.lyrics.toPlainText(), blend, self._tempo())

    def _tempo(self) -> Tempo | None:
        if self._usual_tempi is None:
            return self._shown_tempo  # this model ignores a tempo; one set with another model stays
        if not self.tempo_set.isChecked():
            return None
        fields = Tempo(round(self.tempo.value(), 1), self.beats_per_bar.value())
        shown = self._shown_tempo
        if shown is not None and (shown.bpm, shown.beats_per_bar) == (fields.bpm, fields.beats_per_bar):
            return shown  # unchanged: a riff's tempo keeps its bar lines
        return fields

    # -- how far the song has sung ----------------------------------------------------------------
    def show_lyric_progress(self, progress: Any) -> None:
        """progress: the session's LyricProgress of the take shown, or None for a model without lyrics."""
        self._progress, self._progress_known = progress, True
        self._paint_progress()

    def clear_lyric_progress(self, message: str = "") -> None:
        """Nothing known (no take under the cursor, no model, or it could not be worked out: `message`)."""
        self._progress, self._progress_known = None, False
        self._paint_progress()
        self.lyrics_progress.setText(message)

    def set_playhead_code(self, code: int | None) -> None:
        """The top-level code at the playhead of the song shown (None: nothing plays)."""
        if code != self._playhead_code:
            self._playhead_code = code
            self._paint_progress()

    def sung_characters(self) -> int | None:
        """Characters of the lyrics in the editor that the song has sung, None when not known."""
        progress, text = self._progress, self.lyrics.toPlainText()
        if progress is None or not any(lyrics == text for _, lyrics in progress.sections):
            return None
        return progress.sung(text)

    def _paint_progress(self) -> None:
        text = self.lyrics.toPlainText()
        selections = []
        sung = self.sung_characters()
        if not self._progress_known:
            label = ""
        elif self._progress is None:
            label = NO_LYRICS_MODEL
        elif sung is None:
            label = "Edited: the song sings these lyrics once they are applied with Change from this take."
        elif not text:
            label = "No lyrics for this take."
        else:
            label = f"sung: {sung} of {len(text)} characters"
            if sung:
                selections.append(self._selection(0, sung, self._sung_format()))
            at = -1 if self._playhead_code is None else self._progress.char_at(self._playhead_code, text)
            if at >= 0:
                selections.append(self._selection(at, at + 1, self._playhead_format()))
        self.lyrics.setExtraSelections(selections)
        self.lyrics_progress.setText(label)

    def _selection(self, start: int, end: int, char_format: QTextCharFormat) -> QTextEdit.ExtraSelection:
        text = self.lyrics.toPlainText()
        cursor = QTextCursor(self.lyrics.document())
        cursor.setPosition(utf16_position(text, start))
        cursor.setPosition(utf16_position(text, end), QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        selection.cursor = cursor
        selection.format = char_format
        return selection

    @staticmethod
    def _sung_format() -> QTextCharFormat:
        char_format = QTextCharFormat()
        char_format.setBackground(SUNG_BACKGROUND)
        return char_format

    @staticmethod
    def _playhead_format() -> QTextCharFormat:
        char_format = QTextCharFormat()
        char_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
        char_format.setUnderlineColor(PLAYHEAD_UNDERLINE)
        return char_format

    def _request_swap(self) -> None:
        try:
            conditioning = self.conditioning()
        except ValueError as exc:
            self.problem.emit(str(exc))
            return
        self.swapRequested.emit(conditioning)
