"""The song as it plays: the takes of the current path side by side, each as wide as it is long, with a
mark where the song could have gone another way (a take with siblings: a branch point)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from cocompose.song import SongTree

FILLS = (QColor(96, 140, 200), QColor(120, 170, 110))
BRANCH_MARK = QColor(230, 150, 40)


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


class TimelineView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="timeline")
        self.segments: list[Segment] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("The current song: one block per take; orange marks are branch points")

    def sizeHint(self) -> QSize:
        return QSize(400, 48)

    def set_segments(self, segments: list[Segment]) -> None:
        if segments != self.segments:
            self.segments = segments
            self.update()

    def branch_points_s(self) -> list[float]:
        return [s.start_s for s in self.segments if s.alternatives > 0]

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        width, height = self.width(), self.height()
        total = self.segments[-1].end_s if self.segments else 0.0
        if total <= 0:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The song is empty: generate a take")
            return
        scale = width / total
        for i, segment in enumerate(self.segments):
            rect = QRectF(segment.start_s * scale, 8, (segment.end_s - segment.start_s) * scale, height - 16)
            painter.fillRect(rect, FILLS[i % 2])
        painter.setPen(QPen(BRANCH_MARK, 3))
        for at in self.branch_points_s():
            painter.drawLine(round(at * scale), 0, round(at * scale), height)
        painter.setPen(self.palette().text().color())
        painter.drawText(self.rect().adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignRight, f"{total:.1f} s")
