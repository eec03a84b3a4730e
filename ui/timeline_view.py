"""The song as it plays, and who sings where: the current path's takes side by side, each as wide as it
is long, coloured by the conditioning in force (one stable colour per artist; a blend shows both, one
above the other), labelled "Artist · Genre" where the label fits, with a mark at every conditioning change
and an orange mark where the song could have gone another way (a take with siblings: a branch point).

Right-click a moment for "Change the voice here to …" (the voice in the Conditioning panel): the window
asks the session to make that moment the start of a take singing in that voice (a duet).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QContextMenuEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from cocompose.song import SongTree
from cocompose.timeline import Section

BRANCH_MARK = QColor(230, 150, 40)
CHANGE_MARK = QColor(224, 108, 117)
TAKE_EDGE = QColor(255, 255, 255, 150)
LABEL_PAD = 4


@dataclass(frozen=True)
class Segment:
    node_id: int
    start_s: float
    end_s: float
    alternatives: int  # siblings this take was chosen among (0: nothing else was sampled here)


def path_segments(tree: SongTree, codes_per_second: float) -> list[Segment]:
    """The current path of `tree` as segments in seconds from the start of the song."""
    segments, start = [], 0.0
    for node_id in tree.current_path:
        node = tree.node(node_id)
        end = start + len(node.codes) / codes_per_second
        siblings = len(tree.children(node.parent_id)) - 1 if node.parent_id is not None else 0
        segments.append(Segment(node_id, start, end, siblings))
        start = end
    return segments


def artist_colour(name: str) -> QColor:
    """The same colour for the same artist, in every run and every song (a checksum of the name, not
    Python's salted hash), muted enough for white text."""
    hue = zlib.crc32(name.strip().casefold().encode()) % 360
    return QColor.fromHsv(hue, 120, 190)


class TimelineView(QWidget):
    voiceChangeRequested = Signal(float)  # seconds into the song shown: the voice changes from there

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="timeline")
        self.segments: list[Segment] = []
        self.sections: list[Section] = []
        self.empty_text = "The song is empty: generate a take"  # what an empty song says (the window sets it)
        self._next_voice: Callable[[], str] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("The current song, coloured by who sings. Red marks: the voice changes; orange "
                        "marks: branch points. Right-click to change the voice from a moment on")  # fmt: skip

    def sizeHint(self) -> QSize:
        return QSize(400, 56)

    # -- what it shows -------------------------------------------------------------------------------
    def set_segments(self, segments: list[Segment]) -> None:
        if segments != self.segments:
            self.segments = segments
            self.update()

    def set_sections(self, sections: list[Section]) -> None:
        if sections != self.sections:
            self.sections = sections
            self.update()

    def set_voice_provider(self, next_voice: Callable[[], str]) -> None:
        """Where the menu learns the voice it offers: its label, or ValueError saying what is missing."""
        self._next_voice = next_voice

    @property
    def total_s(self) -> float:
        return self.segments[-1].end_s if self.segments else 0.0

    def branch_points_s(self) -> list[float]:
        return [s.start_s for s in self.segments if s.alternatives > 0]

    def changes_s(self) -> list[float]:
        """Where the conditioning changes (the start of every section but the first)."""
        return [s.start_s for s in self.sections[1:]]

    def seconds_at(self, x: float) -> float:
        """The moment of the song under x (pixels from the left edge), clamped to the song."""
        if self.width() <= 0:
            return 0.0
        return min(max(x, 0.0), float(self.width())) * self.total_s / self.width()

    def x_of(self, seconds: float) -> float:
        return seconds * self.width() / self.total_s if self.total_s > 0 else 0.0

    # -- the menu ------------------------------------------------------------------------------------
    def context_menu_at(self, seconds: float) -> QMenu:
        """The right-click menu for a moment of the song (not shown: the caller pops it up or reads it)."""
        menu = QMenu(self)
        action = QAction(menu, objectName="changeVoiceAction")
        try:
            voice = self._next_voice() if self._next_voice is not None else None
        except ValueError as exc:
            action.setText("Change the voice here")
            action.setEnabled(False)
            action.setToolTip(str(exc))
            action.setStatusTip(str(exc))
        else:
            action.setText(f"Change the voice here to {voice}" if voice else "Change the voice here")
            action.setEnabled(voice is not None and self.total_s > 0)
        action.triggered.connect(lambda _=False: self.voiceChangeRequested.emit(seconds))
        menu.addAction(action)
        menu.setToolTipsVisible(True)
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if self.total_s <= 0:
            return
        menu = self.context_menu_at(self.seconds_at(event.pos().x()))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(event.globalPos())  # not exec(): no nested event loop

    # -- painting ------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        height = self.height()
        total = self.total_s
        if total <= 0:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        top, bottom = 8.0, height - 8.0
        boxes = []
        for section in self.sections:
            left, right = self.x_of(section.start_s), self.x_of(section.end_s)
            artists = section.artists
            band = (bottom - top) / len(artists)
            for i, artist in enumerate(artists):
                painter.fillRect(QRectF(left, top + i * band, right - left, band), artist_colour(artist))
            boxes.append((QRectF(left, top, right - left, bottom - top), section.label))
        painter.setPen(QPen(TAKE_EDGE, 1))
        for segment in self.segments[1:]:
            x = round(self.x_of(segment.start_s))
            painter.drawLine(x, round(top), x, round(bottom))
        for rect, label in boxes:  # over the take edges: a label may span several takes
            self._draw_label(painter, rect, label)
        painter.setPen(QPen(CHANGE_MARK, 3))
        for at in self.changes_s():
            x = round(self.x_of(at))
            painter.drawLine(x, 0, x, height)
            painter.drawLine(QPoint(x - 4, 0), QPoint(x + 4, 0))
        painter.setPen(QPen(BRANCH_MARK, 2, Qt.PenStyle.DashLine))
        for at in self.branch_points_s():
            x = round(self.x_of(at))
            painter.drawLine(x, 0, x, height)
        painter.setPen(self.palette().text().color())
        painter.drawText(self.rect().adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignRight, f"{total:.1f} s")

    def _draw_label(self, painter: QPainter, rect: QRectF, label: str) -> None:
        """The label inside its section, shortened with "…" when it is too long, left out when even a
        few letters would not fit."""
        room = int(rect.width()) - 2 * LABEL_PAD
        metrics = painter.fontMetrics()
        if room < metrics.horizontalAdvance("Mm…"):
            return
        text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, room)
        painter.setPen(QColor("white"))
        painter.drawText(rect.adjusted(LABEL_PAD, 0, -LABEL_PAD, 0), Qt.AlignmentFlag.AlignVCenter, text)
