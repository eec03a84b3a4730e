"""What the main window plays, and the widgets around it: the waveform of the song up to the take under the
cursor (with its branch points, conditioning changes and render progress), the transport bar under it, and
the transport keys for the whole window.

What plays is the song so far, not the take alone: root..take, positioned at the take's start, the way a
musician hears a take in context. The audio is gathered by `AppSession.play_path` on its audio thread
(the GUI never waits); a take still being sampled plays from the service's live stream and grows as it is
drawn. Moving the cursor to a sibling of the take that is playing (number keys 1-9, or a click) switches
at the same playhead position without a gap (`Player.switch`): siblings share everything before them, so
one position is one moment of the song on both paths. Another take loads at its own start.

With "Hear the upsampled render" on (`set_rendered`), what loads is the render as far as upsampling has
saved it, then the preview (`AppSession.play_path(quality="rendered")`). While an upsampling job of the song
that plays goes on, the panel asks for the newer render at most every RENDER_REFRESH_S and switches to it
in place (`Player.switch`, the same playhead), so the render is heard growing without a gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cocompose.playback import Player, PlayerState, PlayerStatus
from cocompose.service.jobs import DONE, FINISHED
from cocompose.song import SongTree
from cocompose.take_audio import PathAudio
from cocompose.timeline import conditioning_changes, conditioning_sections
from ui.transport import TransportBar, TransportKeys
from ui.waveform_view import WaveformView

RENDER_REFRESH_S = 2.0  # the newer render of a song being upsampled is loaded at most this often


def path_markers(tree: SongTree, path: tuple[int, ...], codes_per_second: float):
    """(branch points, conditioning changes) along `path`, in seconds from the start of the song: where
    a take was chosen among siblings, and where the conditioning changes (labelled "Artist · Genre", as
    the timeline's sections are)."""
    branch_points, codes = [], 0
    for node_id in path:
        if node_id not in tree:
            break
        node = tree.node(node_id)
        if node.parent_id is not None and len(tree.children(node.parent_id)) > 1:
            branch_points.append(codes / codes_per_second)
        codes += len(node.codes)
    changes = conditioning_changes(conditioning_sections(tree, path, codes_per_second))
    return branch_points, changes


class PlaybackPanel(QWidget):
    """The waveform over the transport bar, driving one Player.

    session: the AppSession (play_path), when_done: the bridge's way of hearing a future on this thread.
    """

    pathShown = Signal(object)  # PathAudio, once it is loaded into the player
    playerStatusChanged = Signal(object)  # PlayerStatus, when the state or message changes
    playheadMoved = Signal(float)  # seconds into the song loaded, whenever the position moves
    renderToggleRequested = Signal()  # U: hear the upsampled render, or the preview again

    def __init__(self, session: Any, when_done: Callable[..., None], output_device: int | str | None = None,
                 open_now: bool = True, parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self._session = session
        self._when_done = when_done
        self._keys: TransportKeys | None = None
        self._window: QWidget | None = None
        self._wanted: int | None = None  # the take whose path was asked for last
        self._asked = 0  # the number of the last path asked for: only its answer is loaded
        self.rendered = False  # play the upsampled render as far as it goes, not only the preview
        self._refreshing = self._refresh_again = False  # a newer render is being gathered / wanted after
        self._last_refresh = -RENDER_REFRESH_S
        self._refresh_timer = QTimer(self, singleShot=True)
        self._refresh_timer.timeout.connect(self._refresh_render)
        self.playing: PathAudio | None = None  # what the player has loaded
        self._render: tuple[float, tuple[int, ...]] | None = None  # (seconds rendered, path rendered)
        self.lent = False  # another owner (the record dialog) plays through the player: keep off it
        self._shut = False

        self.waveform = WaveformView()
        self.waveform.setObjectName("waveform")
        self.waveform.setMinimumHeight(140)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.waveform, 1)
        self.player = Player(output_device)
        self.bar = self._make_bar(self.player)
        if open_now:
            self.player.open()  # so the first Space only starts a stream that is already open

    def _make_bar(self, player: Player) -> TransportBar:
        bar = TransportBar(player)
        bar.setObjectName("transport")
        bar.positionChanged.connect(self.waveform.set_playhead)
        bar.positionChanged.connect(self.playheadMoved)
        bar.statusChanged.connect(self._status_changed)
        bar.set_loop_region_provider(self.waveform.selected_region)
        self.waveform.seekRequested.connect(bar.seek)
        self._layout.addWidget(bar)
        return bar

    def install_keys(self, window: QWidget, on_sibling: Callable[[int], None]) -> TransportKeys:
        """Space, L, arrows, Home/End, 1-9 and U for the whole `window` (1-9 call on_sibling(n), U emits
        renderToggleRequested)."""
        self._window, self._on_sibling = window, on_sibling
        self._keys = TransportKeys(self.bar, window)
        self._keys.siblingRequested.connect(on_sibling)
        self._keys.renderRequested.connect(self.renderToggleRequested)
        return self._keys

    def use_output_device(self, device: int | str | None) -> None:
        """Play through another device from now on (a new player; what was loaded stays loaded)."""
        old_player, old_bar = self.player, self.bar
        status = old_player.status()
        self.player = Player(device)
        self.player.open()
        self.waveform.seekRequested.disconnect(old_bar.seek)
        self._layout.removeWidget(old_bar)
        old_bar.deleteLater()
        self.bar = self._make_bar(self.player)
        if self._keys is not None and self._window is not None:
            self._keys.uninstall()
            self.install_keys(self._window, self._on_sibling)
        old_player.close()
        if self.playing is not None:
            self.player.load(self.playing.source, status.position)
        self.bar.refresh()

    # -- what plays ---------------------------------------------------------------------------------
    def lend(self) -> None:
        """Let another owner play through the player until `take_back()`; no song is loaded meanwhile."""
        self.lent = True
        self.forget()

    def take_back(self) -> None:
        self.lent = False
        self.forget()

    def show_take(self, node_id: int, again: bool = False) -> Future | None:
        """Load the song up to `node_id` (see the module for when it switches in place); again: even when
        it is the take loaded (its codes changed: the start of the song was primed)."""
        if self._session.audio is None or self.lent:
            return None
        if not again and self.playing is not None and self.playing.node_id == node_id:
            return None
        return self._ask(node_id)

    def set_rendered(self, on: bool) -> None:
        """Hear the upsampled render (as far as it goes, then the preview) or the preview alone; what is
        loaded switches at once, in place."""
        if on == self.rendered:
            return
        self.rendered = on
        self._refresh_timer.stop()
        self._refresh_again = False
        target = self._wanted
        if target is not None and not self.lent:  # the path loaded, or the one on its way
            self._ask(target, in_place=self.playing is not None and self.playing.node_id == target)

    def _ask(self, node_id: int, in_place: bool = False, refresh: bool = False) -> Future:
        """Ask for the song up to `node_id`; in_place: it is the path loaded, heard from the same playhead."""
        self._wanted = node_id
        self._asked += 1
        asked = self._asked
        quality = "rendered" if self.rendered else "preview"
        future = self._session.play_path(node_id, self.player.sample_rate, quality=quality)

        def ready(found: PathAudio) -> None:
            if refresh:
                self._refreshed()
            if asked == self._asked:
                self._path_ready(found, in_place)

        self._when_done(future, ready, (lambda _error: self._refreshed()) if refresh else None)
        return future

    def prefetch(self, node_ids: list[int]) -> None:
        """Gather these takes' paths now, so switching to them later is instant."""
        if self._session.audio is None:
            return
        for node_id in node_ids:
            self._session.play_path(node_id, self.player.sample_rate, prefetch=True)

    def _path_ready(self, found: PathAudio, in_place: bool = False) -> None:
        if found.node_id != self._wanted or self.lent or self._shut:
            return  # the cursor moved on meanwhile, the player is lent out, or the window closed
        if in_place and found is self.playing:
            return  # nothing newer was rendered
        previous, self.playing = self.playing, found
        status = self.player.status()
        siblings = previous is not None and previous.node_ids[:-1] == found.node_ids[:-1]
        siblings = siblings and previous.node_id != found.node_id
        same = in_place and previous is not None and previous.node_ids == found.node_ids
        if (siblings or same) and status.state in (PlayerState.PLAYING, PlayerState.PAUSED):
            self.player.switch(found.source)  # A/B: the same moment of the song on the other take
        elif same:
            self.player.load(found.source, status.position)  # stopped: the playhead stays where it was
        else:
            self.player.load(found.source, found.take_start)
        self.waveform.follow(found.source)
        self.bar.refresh()
        self.waveform.set_playhead(self.player.status().position)
        self._show_render()
        self.pathShown.emit(found)

    def forget(self) -> None:
        """Nothing to play (the song was closed): the player stops and the waveform empties."""
        self._wanted, self.playing, self._render = None, None, None
        self._asked += 1  # an answer still on its way is for a song no longer shown
        self._refresh_timer.stop()
        self._refreshing = self._refresh_again = False
        self.player.stop()
        self.waveform.follow(None)
        self.waveform.set_markers()
        self.waveform.set_render_progress(None)

    def set_markers(self, tree: SongTree, codes_per_second: float) -> None:
        if self.playing is None:
            return
        branch_points, changes = path_markers(tree, self.playing.node_ids, codes_per_second)
        self.waveform.set_markers(branch_points, changes)

    # -- render progress ----------------------------------------------------------------------------
    def job_event(self, event: Any, current_path: tuple[int, ...], song_seconds: float) -> None:
        """An upsampling job of the current song shades what it has rendered so far; while the render is
        heard and the song playing is the one upsampled, its newer render is loaded (at most every
        RENDER_REFRESH_S)."""
        if event.kind != "upsample":
            return
        current_path = tuple(current_path)
        if event.state in FINISHED and event.state != DONE:
            self._render = None
        else:
            fraction = 1.0 if event.state == DONE else event.fraction
            self._render = (fraction * song_seconds, current_path)
        self._show_render()
        if self.rendered and self.playing is not None and self.playing.node_ids == current_path:
            self._refresh_render()

    def _refresh_render(self) -> None:
        if not self.rendered or self.playing is None or self.lent or self._shut:
            return
        if self._refreshing:
            self._refresh_again = True  # once this one is in, windows saved meanwhile are fetched too
            return
        wait = self._last_refresh + RENDER_REFRESH_S - time.monotonic()
        if wait > 0:
            if not self._refresh_timer.isActive():
                self._refresh_timer.start(int(wait * 1000) + 1)
            return
        self._last_refresh = time.monotonic()
        self._refreshing = True
        self._ask(self.playing.node_id, in_place=True, refresh=True)

    def _refreshed(self) -> None:
        self._refreshing = False
        if self._refresh_again:
            self._refresh_again = False
            self._refresh_render()

    def _show_render(self) -> None:
        """The band is drawn while the take playing is on the rendered song (its path a prefix of it), or
        over what is heard rendered."""
        render, playing = self._render, self.playing
        if playing is not None and playing.rendered > 0:
            self.waveform.set_render_progress(playing.rendered)
        elif render is None or playing is None or render[1][: len(playing.node_ids)] != playing.node_ids:
            self.waveform.set_render_progress(None)
        else:
            self.waveform.set_render_progress(render[0])

    # -- the end -------------------------------------------------------------------------------------
    def _status_changed(self, status: PlayerStatus) -> None:
        self.playerStatusChanged.emit(status)

    def shutdown(self) -> None:
        self._shut = True
        if self._keys is not None:
            self._keys.uninstall()
            self._keys = None
        self.player.close()
        self.waveform.close()
