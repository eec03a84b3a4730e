"""Keeps the Conditioning tab's lyrics shading in step with the take under the main window's cursor.

It asks the session how far the song up to that take has sung whenever that may have changed (the
cursor moved, the take grew, the model changed), at most every LYRICS_EVERY_S while a take is being
sampled, one question at a time, and underlines the character at the playhead while the take plays.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, QTimer

from cocompose.app_reports import describe_error
from cocompose.playback import PlayerState

LYRICS_EVERY_S = 2.0  # a take being sampled has its lyric progress worked out again at most this often


class LyricsFollower(QObject):
    """window: the MainWindow whose cursor, model, session and Conditioning tab this follows."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self._window = window
        self.key: tuple | None = None  # what the lyric progress shown (or asked for) is of
        self._asked_at = -LYRICS_EVERY_S
        self._at_next_sync = False
        # One question at a time: a model slower than LYRICS_EVERY_S would otherwise queue them up, and
        # every answer would be stale by the time it came. Another is asked (at once: `_again_now`) after.
        self._busy = self._again = self._again_now = False
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(lambda: self.ask(now=True))

    def ask_at_next_sync(self) -> None:
        """The tree update that brings a finished take's last codes asks at once."""
        self._at_next_sync = True

    def synced(self) -> None:
        now, self._at_next_sync = self._at_next_sync, False
        self.ask(now=now)

    def model_changed(self) -> None:
        self.key = None
        self.ask(now=True)

    def _current_key(self) -> tuple | None:
        """What the lyric progress of the take under the cursor depends on: its path, the codes on it and
        the conditioning along it (None: no take under the cursor, or no model)."""
        window = self._window
        node_id = window.selected_take()
        if node_id is None or window._model is None:
            return None
        mirror = window._mirror
        path = mirror.path_to(node_id)
        along = tuple((len(mirror.node(i).codes), mirror.conditioning_at(i)) for i in path)
        return (window._model.reference, node_id, tuple(path), along)

    def ask(self, now: bool = False) -> None:
        """Ask the session where the song up to the take under the cursor sings, when that changed; a
        growing take (not `now`) is asked for at most every LYRICS_EVERY_S."""
        panel = self._window.conditioning_panel
        key = self._current_key()
        if key is None:
            self._timer.stop()
            if self.key is not None or panel.lyrics_progress.text():
                self.key = None
                panel.clear_lyric_progress()
            return
        if key == self.key:
            return
        if self._busy:
            self._again, self._again_now = True, self._again_now or now
            return
        wait = LYRICS_EVERY_S - (time.monotonic() - self._asked_at)
        if not now and wait > 0:
            if not self._timer.isActive():
                self._timer.start(int(wait * 1000) + 1)
            return
        self._timer.stop()
        if self.key is None or key[1] != self.key[1]:
            panel.clear_lyric_progress("Working out how far this take has sung…")
        self.key, self._asked_at = key, time.monotonic()
        self._busy = True
        future = self._window.session.lyric_progress(key[1])
        self._window.bridge.when_done(
            future,
            lambda progress: self._answer(key, progress, None),
            lambda error: self._answer(key, None, error),
        )

    def _answer(self, key: tuple, progress, error: BaseException | None) -> None:
        """Show an answer while its take (with the same model) is under the cursor: a take that grew
        meanwhile shows it until the next one comes. Then ask again if something changed meanwhile."""
        self._busy = False
        panel = self._window.conditioning_panel
        current = self._current_key()
        if current is not None and current[:2] == key[:2]:
            if error is None:
                panel.show_lyric_progress(progress)
                self.mark_playhead()
            elif current == key:
                panel.clear_lyric_progress(f"How far it has sung is unknown: {describe_error(error)}")
        if self._again:
            now, self._again, self._again_now = self._again_now, False, False
            self.ask(now=now)

    def mark_playhead(self) -> None:
        """The code at the playhead, while the song up to the take under the cursor plays (or is paused)."""
        window, key = self._window, self.key
        status = window.playback.player.status()
        if (
            key is None
            or window.playing_take() != key[1]
            or status.state not in (PlayerState.PLAYING, PlayerState.PAUSED)
        ):
            window.conditioning_panel.set_playhead_code(None)
            return
        window.conditioning_panel.set_playhead_code(int(status.position * window._codes_per_second()))
