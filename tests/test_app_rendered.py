"""The real main window hears the upsampled render (Play > Hear the Upsampled Render, U): paused in the
middle of a take, the song is upsampled, and the player switches in place to every newer render, the
playhead not moving, until the render covers the song; what it plays then is the Qt-free
`rendered_audio` of that path. U again goes back to the preview, in place too."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cocompose.playback import PlayerState
from cocompose.rendered_audio import rendered_audio
from tests.compose_model import write_tiny_bundle
from tests.test_app_flow import children_of, click, new_song, open_window, run_job
from ui import playback_panel

pytestmark = [pytest.mark.qt, pytest.mark.audio, pytest.mark.usefixtures("one_thread")]
JOB_MS = 60_000
SECONDS = 0.7


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True)  # with both upsamplers


@pytest.fixture
def window(qtbot, tmp_path, bundle, jack_server):
    window = open_window(qtbot, tmp_path / "config", bundle, jack_server=jack_server)
    assert window._model.can_upsample and window.upsample_action.isEnabled()
    new_song(qtbot, window, tmp_path / "song.cocompose")
    yield window
    window.close()


def test_the_render_is_heard_growing_in_place_and_ends_as_the_rendered_audio(qtbot, window, monkeypatch):
    monkeypatch.setattr(playback_panel, "RENDER_REFRESH_S", 0.3)  # several switches within a short job
    panel = window.generate_panel
    panel.branches.setValue(1)
    panel.seconds.setValue(SECONDS)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.generate_button))
    (take,) = children_of(window, 1)
    window.select_take(take)
    qtbot.waitUntil(lambda: window.playing_take() == take, timeout=JOB_MS)
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Return)  # pick it: Upsample the Song renders root..take
    qtbot.waitUntil(lambda: window._mirror.current_id == take)
    preview = window.playback.playing

    qtbot.keyClick(window.tree_view, Qt.Key.Key_U)
    assert window.render_action.isChecked() and window.playback.rendered
    qtbot.wait(200)  # nothing is rendered yet: the preview stays loaded
    assert window.playback.playing is preview and preview.rendered == 0.0

    player = window.playback.player
    window.tree_view.setFocus()
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: player.position > 0.3, timeout=5000)
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
    assert player.status().state is PlayerState.PAUSED
    paused_at = player.position

    shown = []
    window.playback.pathShown.connect(lambda found: shown.append((found, player.status())))
    run_job(qtbot, window, "upsample", window.upsample_action.trigger)
    song_seconds = len(window._mirror.path_codes(take)) / window._model.codes_per_second
    qtbot.waitUntil(lambda: window.playback.playing.rendered == pytest.approx(song_seconds), timeout=JOB_MS)

    # Every newer render was switched to in place: paused at the same moment, growing, each its own.
    rendered = [found.rendered for found, _ in shown]
    assert len(shown) >= 3 and 0 < rendered[0] and rendered == sorted(set(rendered)), rendered
    assert any(0 < r < song_seconds - 0.05 for r in rendered)  # heard part rendered, part preview
    for found, status in shown:
        assert found.node_ids == preview.node_ids
        assert status.state is PlayerState.PAUSED and status.position == paused_at

    # What plays is the Qt-free function's render of the path (decoded here a piece at a time).
    session, playing = window.session, window.playback.playing
    preview_audio = preview.source.audio()
    expected, seconds = session.service.read(lambda p: rendered_audio(p, session.engine, take, preview_audio))
    assert seconds == pytest.approx(song_seconds) and playing.rendered == seconds
    assert player.source is playing.source
    np.testing.assert_allclose(playing.source.audio(), expected, atol=1e-6, rtol=0)
    assert not np.allclose(expected, preview_audio, atol=1e-2)  # the render is not the preview
    assert window.playback.waveform.audio_duration == pytest.approx(SECONDS, abs=0.02)

    qtbot.keyClick(window.tree_view, Qt.Key.Key_U)  # back to the preview, at the same moment
    assert not window.render_action.isChecked()
    qtbot.waitUntil(lambda: window.playback.playing.rendered == 0.0, timeout=JOB_MS)
    np.testing.assert_array_equal(window.playback.playing.source.audio(), preview_audio)
    assert player.status().state is PlayerState.PAUSED and player.position == paused_at
