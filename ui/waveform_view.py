"""The waveform and spectrogram of what is playing, with the playhead and the song's landmarks.

Wiring (main window):

    view = WaveformView()
    view.follow(source)                         # an AudioSource; redrawn as it grows (branches being sampled)
    bar.positionChanged.connect(view.set_playhead)
    view.seekRequested.connect(bar.seek)        # click or drag the playhead
    bar.set_loop_region_provider(view.selected_region)
    view.set_markers(branch_points=[12.0, 24.0], conditioning_changes=[(18.0, "Artist B")])
    view.set_render_progress(seconds_rendered)  # a shaded band over what is already rendered (None hides)

The spectrogram of a long take is computed on a worker thread; a newer request supersedes an older one,
and only the newest result is drawn. Computations are cocompose.waveform_data's pure numpy functions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cocompose.playback import AudioSource
from cocompose.waveform_data import MIN_DB, Envelope, Spectrogram, envelope, spectrogram

_log = logging.getLogger(__name__)

BACKGROUND_SPECTROGRAM_SECONDS = 5.0  # longer audio gets its spectrogram off the GUI thread
FOLLOW_MS = 250  # how often a growing source is checked for new audio
EMPTY_SPECTRUM_HZ = 8000.0  # the frequency axis shown before there is any audio


class _Relay(QObject):
    """Carries a worker's result to the GUI thread (a queued signal)."""

    spectrogramReady = Signal(int, object)


class WaveformView(QWidget):
    """Two stacked plots sharing the time axis: the waveform's envelope above, the spectrogram below."""

    seekRequested = Signal(float)  # seconds: the user dragged the playhead or clicked the plot

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._audio = np.zeros(0, np.float32)
        self._rate = 1
        self._request = 0  # generation of the newest spectrogram request
        self._closed = False  # closeEvent ran: the worker pool is gone
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cocompose-spectrogram")
        self._relay = _Relay(self)
        self._relay.spectrogramReady.connect(self._show_spectrogram)
        self._followed: AudioSource | None = None
        self._followed_frames = -1
        self._follow_timer = QTimer(self, interval=FOLLOW_MS)
        self._follow_timer.timeout.connect(self._check_followed)
        self._marker_items: list[pg.InfiniteLine] = []
        self.last_spectrogram: Spectrogram | None = None
        self.last_envelope: Envelope | None = None

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("waveformPlots")
        self.wave_plot = self.plots.addPlot(row=0, col=0)
        self.spec_plot = self.plots.addPlot(row=1, col=0)
        self.spec_plot.setXLink(self.wave_plot)
        for plot in (self.wave_plot, self.spec_plot):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=True, y=False)
            plot.hideButtons()
        self.wave_plot.setYRange(-1, 1, padding=0.02)
        self.wave_plot.hideAxis("bottom")
        self.spec_plot.setLabel("bottom", "time", units="s")
        self.spec_plot.setLabel("left", "Hz")

        self.wave_high = self.wave_plot.plot(pen=pg.mkPen("#4aa3df"))
        self.wave_low = self.wave_plot.plot(pen=pg.mkPen("#4aa3df"))
        self.wave_fill = pg.FillBetweenItem(
            self.wave_high, self.wave_low, brush=pg.mkBrush(74, 163, 223, 110)
        )
        self.wave_plot.addItem(self.wave_fill)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.spec_plot.addItem(self.image)

        self.render_region = pg.LinearRegionItem(
            (0, 0), movable=False, brush=pg.mkBrush(80, 200, 120, 40), pen=pg.mkPen(None)
        )
        self.render_region.setZValue(-10)
        self.render_region.setVisible(False)
        self.wave_plot.addItem(self.render_region)
        self.selection = pg.LinearRegionItem((0, 0), brush=pg.mkBrush(255, 255, 255, 35))
        self.selection.setVisible(False)
        self.wave_plot.addItem(self.selection)

        self.playheads = [pg.InfiniteLine(0, movable=True, pen=pg.mkPen("#ffcc00", width=2))]
        self.playheads.append(pg.InfiniteLine(0, movable=False, pen=pg.mkPen("#ffcc00", width=1)))
        self.wave_plot.addItem(self.playheads[0])
        self.spec_plot.addItem(self.playheads[1])
        self.playheads[0].sigPositionChangeFinished.connect(self._playhead_dragged)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots)

    # --- content -------------------------------------------------------------------------------------

    def set_audio(self, audio: np.ndarray, sample_rate: int) -> None:
        """Draw `audio` (mono float). Stops following a source."""
        self._stop_following()
        self._draw(np.asarray(audio, np.float32), sample_rate)

    def follow(self, source: AudioSource | None) -> None:
        """Draw `source` and redraw it while it grows (a branch still being sampled); None clears."""
        self._stop_following()
        if source is None:
            self._draw(np.zeros(0, np.float32), 1)
            return
        self._followed = source
        self._check_followed()
        self._follow_timer.start()

    def _stop_following(self) -> None:
        self._follow_timer.stop()
        self._followed, self._followed_frames = None, -1

    def _check_followed(self) -> None:
        source = self._followed
        if source is None:
            return
        data, frames, complete = source.snapshot()
        if frames != self._followed_frames:
            self._followed_frames = frames
            self._draw(data[:frames], source.sample_rate)
        if complete:
            self._follow_timer.stop()

    def _draw(self, audio: np.ndarray, sample_rate: int) -> None:
        if self._closed:
            return  # a result that arrives while the window closes: nothing is shown any more
        self._audio, self._rate = audio, sample_rate
        shape = envelope(audio, sample_rate)
        self.last_envelope = shape
        self.wave_high.setData(shape.times, shape.high)
        self.wave_low.setData(shape.times, shape.low)
        duration = len(audio) / sample_rate
        # Nothing to show: a second of empty axes in seconds and hertz, not milli-units around zero.
        self.wave_plot.setXRange(0, duration if duration > 0 else 1.0, padding=0)
        self._request += 1
        request = self._request
        if duration <= BACKGROUND_SPECTROGRAM_SECONDS:
            self._show_spectrogram(request, spectrogram(audio, sample_rate))
        else:
            self._pool.submit(self._compute_spectrogram, request, audio, sample_rate)

    def _compute_spectrogram(self, request: int, audio: np.ndarray, sample_rate: int) -> None:
        if request != self._request:
            return  # superseded before it started
        try:
            result = spectrogram(audio, sample_rate)
        except Exception as exc:  # an empty picture is drawn instead; the reason is logged on the GUI thread
            result = exc
        self._relay.spectrogramReady.emit(request, result)

    def _show_spectrogram(self, request: int, result: object) -> None:
        if request != self._request:
            return
        if not isinstance(result, Spectrogram):
            _log.error("the spectrogram could not be computed: %s", result)
            self.image.clear()
            return
        self.last_spectrogram = result
        if len(result.db) == 0:
            self.image.clear()
            self.spec_plot.setYRange(0, EMPTY_SPECTRUM_HZ, padding=0)
            return
        self.image.setImage(result.db.T, levels=(MIN_DB + 20, 0))  # rows: frequency, columns: time
        frames, bins = result.db.shape
        self.image.setRect(QRectF(0, 0, frames * result.hop_seconds, bins * result.bin_hz))
        self.spec_plot.setYRange(0, bins * result.bin_hz, padding=0)

    @property
    def audio_duration(self) -> float:
        return len(self._audio) / self._rate

    def wait_for_spectrogram(self) -> None:
        """Block until queued spectrogram work has run (for tests and screenshots)."""
        done = threading.Event()
        self._pool.submit(done.set)
        done.wait()

    # --- overlays ------------------------------------------------------------------------------------

    def set_playhead(self, seconds: float) -> None:
        for line in self.playheads:
            line.setValue(seconds)

    @property
    def playhead(self) -> float:
        return float(self.playheads[0].value())

    def _playhead_dragged(self) -> None:
        self.seekRequested.emit(float(max(0.0, self.playheads[0].value())))

    def set_markers(
        self,
        branch_points: Sequence[float] = (),
        conditioning_changes: Sequence[tuple[float, str]] = (),
    ) -> None:
        """Vertical lines at the branch points (dashed) and the conditioning changes (labelled)."""
        for item in self._marker_items:
            self.wave_plot.removeItem(item)
        self._marker_items = []
        for seconds in branch_points:
            line = pg.InfiniteLine(seconds, pen=pg.mkPen("#aaaaaa", dash=[4, 4]), name="branch")
            self.wave_plot.addItem(line)
            self._marker_items.append(line)
        for seconds, label in conditioning_changes:
            line = pg.InfiniteLine(
                seconds,
                pen=pg.mkPen("#e06c75", width=1),
                label=label,
                labelOpts={"position": 0.9, "color": "#e06c75"},
                name="conditioning",
            )
            self.wave_plot.addItem(line)
            self._marker_items.append(line)

    @property
    def markers(self) -> list[tuple[str, float]]:
        """(kind, seconds) of every marker drawn, in the order given."""
        return [(item.name(), float(item.value())) for item in self._marker_items]

    def set_render_progress(self, seconds: float | None) -> None:
        """Shade 0..seconds as rendered; None hides the band."""
        if seconds is None:
            self.render_region.setVisible(False)
            return
        self.render_region.setRegion((0.0, max(0.0, seconds)))
        self.render_region.setVisible(True)

    def set_selection(self, region: tuple[float, float] | None) -> None:
        if region is None:
            self.selection.setVisible(False)
            return
        self.selection.setRegion(region)
        self.selection.setVisible(True)

    def selected_region(self) -> tuple[float, float] | None:
        """The selection (start, end) in seconds, or None when there is none."""
        if not self.selection.isVisible():
            return None
        start, end = self.selection.getRegion()
        return (float(start), float(end)) if end > start else None

    def closeEvent(self, event) -> None:
        self._closed = True
        self._follow_timer.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)
