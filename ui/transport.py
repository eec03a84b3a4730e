"""The transport: a bar of play/pause, time, loop and a seek slider, and the keys that drive it.

Wiring (main window):

    player = Player(device)            # cocompose.playback; open() it early so Space is instant
    bar = TransportBar(player)         # put it under the waveform
    keys = TransportKeys(bar, window)  # Space, L, Left/Right, Home/End, 1-9 anywhere in the window
    keys.siblingRequested.connect(lambda n: player.switch(source_of_sibling(n)))
    bar.positionChanged.connect(waveform.set_playhead)
    waveform.seekRequested.connect(bar.seek)
    bar.set_loop_region_provider(waveform.selected_region)   # L loops the selection, else everything

The bar reads `player.status()` on a timer (the playhead needs it anyway), so it never needs signals
from the player's threads. The player's message (e.g. "cannot play: no sound output device found") is
shown in the bar as it is; the app keeps working without sound.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSlider,
    QTextEdit,
    QToolButton,
    QWidget,
)

from cocompose.playback import Player, PlayerState, PlayerStatus

SEEK_STEP_SECONDS = 5.0
FINE_SEEK_STEP_SECONDS = 1.0  # with Shift
REFRESH_MS = 33
SLIDER_STEPS_PER_SECOND = 100


def format_time(seconds: float) -> str:
    """0:07.25 style: minutes, seconds and hundredths."""
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:05.2f}"


class TransportBar(QWidget):
    """Play/pause, position / duration, loop toggle, seek slider and the player's message."""

    positionChanged = Signal(float)  # seconds, on every refresh while the position moves
    statusChanged = Signal(object)  # PlayerStatus, when the state, message or waiting flag changes

    def __init__(self, player: Player, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._player = player
        self._region_provider: Callable[[], tuple[float, float] | None] = lambda: None
        self._last: PlayerStatus | None = None
        self._dragging = False
        self._loop_error = ""

        self.play_button = QToolButton(objectName="playButton")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.play_pause)
        self.loop_button = QToolButton(objectName="loopButton", text="Loop", checkable=True)
        self.loop_button.setToolTip("Loop the selection, or everything (L)")
        self.loop_button.clicked.connect(self._loop_clicked)
        self.time_label = QLabel(objectName="timeLabel")
        self.time_label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="seekSlider")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows belong to the transport keys
        self.slider.sliderPressed.connect(self._slider_pressed)
        self.slider.sliderReleased.connect(self._slider_released)
        self.message_label = QLabel(objectName="playerMessage")
        for button in (self.play_button, self.loop_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must not "click" a focused button

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.play_button)
        layout.addWidget(self.loop_button)
        layout.addWidget(self.time_label)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.message_label)

        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    @property
    def player(self) -> Player:
        return self._player

    def set_loop_region_provider(self, provider: Callable[[], tuple[float, float] | None]) -> None:
        """Where L gets its region (e.g. the waveform's selection); None from it means the whole source."""
        self._region_provider = provider

    # --- actions (buttons and keys) ------------------------------------------------------------------

    def play_pause(self) -> None:
        self._player.toggle()
        self.refresh()

    def seek(self, seconds: float) -> None:
        self._player.seek(seconds)
        self.refresh()

    def seek_by(self, seconds: float) -> None:
        self._player.seek_by(seconds)
        self.refresh()

    def go_home(self) -> None:
        self._player.seek(0.0)
        self.refresh()

    def go_end(self) -> None:
        self._player.seek_end()
        self.refresh()

    def toggle_loop(self) -> None:
        status = self._player.status()
        self._loop_error = ""
        if status.loop is not None:
            self._player.clear_loop()
        else:
            region = self._region_provider() or (0.0, status.duration)
            try:
                self._player.set_loop(*region)
            except ValueError as exc:
                self._loop_error = f"cannot loop: {exc}"
        self.refresh()

    def _loop_clicked(self) -> None:
        self.toggle_loop()

    def _slider_pressed(self) -> None:
        self._dragging = True

    def _slider_released(self) -> None:
        self._dragging = False
        self.seek(self.slider.value() / SLIDER_STEPS_PER_SECOND)

    # --- display -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        status = self._player.status()
        last, self._last = self._last, status
        playing = status.state is PlayerState.PLAYING
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setEnabled(status.state is not PlayerState.UNAVAILABLE)
        self.loop_button.setChecked(status.loop is not None)
        self.time_label.setText(f"{format_time(status.position)} / {format_time(status.duration)}")
        if not self._dragging:
            self.slider.setMaximum(max(0, round(status.duration * SLIDER_STEPS_PER_SECOND)))
            self.slider.setValue(round(status.position * SLIDER_STEPS_PER_SECOND))
        waiting = "waiting for the take to grow…" if status.waiting else ""
        self.message_label.setText(status.message or self._loop_error or waiting)
        if last is None or last.position != status.position:
            self.positionChanged.emit(status.position)
        if last is None or (last.state, last.message, last.waiting) != (
            status.state,
            status.message,
            status.waiting,
        ):
            self.statusChanged.emit(status)


_TEXT_ENTRY = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)
_NUMBER_KEYS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(1, 10)}


class TransportKeys(QObject):
    """The transport's keys, for everything inside one window (installed as an application event filter).

    Space play/pause, L loop, Left/Right seek (Shift: finer), Home/End, 1-9, which emit
    `siblingRequested(n)` for the window to switch the player to the n-th sibling at the same position,
    and U, which emits `renderRequested` (hear the upsampled render or the preview: the window's checkable
    action has U as its shortcut too, but a tree view takes plain letters for its type-to-search first).
    Keys typed into a text entry, a spin box or an editable combo stay there. Widgets that need the
    arrows themselves (say a tree view) can be named in `keep_arrows_for`.
    """

    siblingRequested = Signal(int)
    renderRequested = Signal()

    def __init__(self, bar: TransportBar, window: QWidget, keep_arrows_for: tuple[type, ...] = ()) -> None:
        super().__init__(window)
        self._bar = bar
        self._window = window
        self._keep_arrows_for = keep_arrows_for
        app = QApplication.instance()
        assert app is not None, "create the QApplication before the transport keys"
        app.installEventFilter(self)

    def uninstall(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not isinstance(watched, QWidget):
            return False
        if watched.window() is not self._window or not isinstance(event, QKeyEvent):
            return False
        # Judge by the focus widget, not the receiver: a key the focus widget ignores travels on to its
        # parents, and a tree that ignored Right must not have it turned into a seek by its parent.
        focus = QApplication.focusWidget()
        return self.handle_key(event, focus if focus is not None else watched)

    def handle_key(self, event: QKeyEvent, target: QWidget) -> bool:
        """Act on one key press; True when it was a transport key (and is consumed)."""
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if modifiers & ~Qt.KeyboardModifier.ShiftModifier:
            return False  # Ctrl/Alt/Meta combinations are the menus'
        if isinstance(target, _TEXT_ENTRY) or (isinstance(target, QComboBox) and target.isEditable()):
            return False
        key = event.key()
        shift = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        if key == Qt.Key.Key_Space and not shift:
            self._bar.play_pause()
        elif key == Qt.Key.Key_L and not shift:
            self._bar.toggle_loop()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            if isinstance(target, self._keep_arrows_for):
                return False
            step = FINE_SEEK_STEP_SECONDS if shift else SEEK_STEP_SECONDS
            self._bar.seek_by(step if key == Qt.Key.Key_Right else -step)
        elif key == Qt.Key.Key_Home and not shift:
            self._bar.go_home()
        elif key == Qt.Key.Key_End and not shift:
            self._bar.go_end()
        elif key in _NUMBER_KEYS and not shift:
            self.siblingRequested.emit(_NUMBER_KEYS[key])
        elif key == Qt.Key.Key_U and not shift:
            self.renderRequested.emit()
        else:
            return False
        return True
