"""The real main window plays through the JACK dummy card: generate branches, Space plays the song up to the
take under the cursor, 2 switches to the other sibling at the same moment with no gap (heard sample for
sample through a JACK loopback), Enter picks it; a take still being sampled plays before its job ends.
Without a sound device the window composes on and says why it cannot play."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from cocompose.audio_io import AudioStatus
from cocompose.playback import PlayerState
from tests.compose_model import write_tiny_bundle
from tests.jack_loop import Capture, connect_first_output_to_first_input, heard
from tests.test_app_flow import children_of, click, new_song, open_window, run_job
from ui.main_window import MainWindow

pytestmark = [pytest.mark.qt, pytest.mark.audio, pytest.mark.usefixtures("one_thread")]
JOB_MS = 60_000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True)


@pytest.fixture
def window(qtbot, tmp_path, bundle, jack_server):
    window = open_window(qtbot, tmp_path / "config", bundle, jack_server=jack_server)
    assert window.playback.player.status().state is PlayerState.STOPPED, window.playback.player.status()
    new_song(qtbot, window, tmp_path / "song.cocompose")
    yield window
    window.close()


def wait_loaded(qtbot, window: MainWindow, node_id: int) -> None:
    qtbot.waitUntil(lambda: window.playing_take() == node_id, timeout=JOB_MS)


def test_space_plays_2_switches_siblings_in_place_and_enter_picks(qtbot, window, jack_server):
    panel = window.generate_panel
    panel.branches.setValue(2)
    panel.seconds.setValue(2.0)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.generate_button))
    qtbot.waitUntil(lambda: len(children_of(window, 1)) == 2)
    first, second = children_of(window, 1)
    window.select_take(first)
    wait_loaded(qtbot, window, first)
    player = window.playback.player
    track_a = window.playback.playing.source.at_rate(player.sample_rate).audio()
    assert np.abs(track_a).max() > 0.01  # the tiny model is audible
    assert window.playback.waveform.audio_duration == pytest.approx(2.0, abs=0.02)
    assert window.playback.waveform.markers == [("branch", 0.0)]  # the take was sampled among two

    with Capture(jack_server.device, jack_server.sample_rate) as capture:
        connect_first_output_to_first_input()  # the window's player into the capture
        window.tree_view.setFocus()
        qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
        assert player.status().state is PlayerState.PLAYING
        qtbot.waitUntil(lambda: player.position > 0.6, timeout=5000)
        before = player.position
        qtbot.keyClick(window.tree_view, Qt.Key.Key_2)
        assert window.selected_take() == second
        wait_loaded(qtbot, window, second)
        assert before <= player.position < before + 0.5  # the same moment of the song, on the other take
        assert player.status().state is PlayerState.PLAYING
        track_b = player.source.at_rate(player.sample_rate).audio()
        qtbot.waitUntil(lambda: player.status().state is PlayerState.STOPPED, timeout=10_000)
        qtbot.wait(100)  # the last block comes back through the loop
        recording = heard(capture.audio())

    # Sample for sample: the first take up to the switch, then the second from the very same frame on.
    assert len(track_a) == len(track_b)
    expected_start = np.flatnonzero(track_a)[0]
    a, b = track_a[expected_start:], track_b[expected_start:]
    assert len(recording) == len(heard(track_b)) == len(a)
    switched_at = int(np.flatnonzero(recording != a)[0])
    assert 0.5 * player.sample_rate < switched_at < 1.8 * player.sample_rate
    np.testing.assert_array_equal(recording, np.concatenate([a[:switched_at], b[switched_at:]]))
    assert window.playback.waveform.playhead == pytest.approx(player.position, abs=0.05)

    qtbot.keyClick(window.tree_view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._mirror.current_id == second)


def test_a_take_still_being_sampled_plays_before_its_job_ends(qtbot, window, jack_server):
    panel = window.generate_panel
    panel.branches.setValue(1)
    panel.seconds.setValue(60.0)  # far longer than the test waits: it is cancelled once heard

    def created(event):
        return event.kind == "generate" and bool(event.node_ids)

    with qtbot.waitSignal(window.bridge.jobEvent, check_params_cb=created, timeout=JOB_MS) as started:
        click(qtbot, panel.generate_button)
    job_id, take = started.args[0].job_id, started.args[0].node_ids[0]
    qtbot.waitUntil(lambda: take in window._mirror, timeout=JOB_MS)
    window.select_take(take)
    wait_loaded(qtbot, window, take)
    source = window.playback.playing.source
    player = window.playback.player

    with Capture(jack_server.device, jack_server.sample_rate) as capture:
        connect_first_output_to_first_input()
        window.tree_view.setFocus()
        qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: np.abs(capture.audio()).max(initial=0) > 0.01, timeout=10_000)
        grown = source.frames
        qtbot.waitUntil(lambda: source.frames > grown, timeout=10_000)  # and it keeps growing
        assert not source.complete and window.jobs_panel.state_of(job_id) == "running"
        assert player.status().state is PlayerState.PLAYING

    window.session.cancel(job_id)
    qtbot.waitUntil(lambda: source.complete, timeout=JOB_MS)  # a cancelled take ends where it was cut
    qtbot.waitUntil(lambda: window.jobs_panel.state_of(job_id) == "cancelled", timeout=JOB_MS)


def test_without_a_sound_device_the_window_composes_and_says_why_it_cannot_play(qtbot, tmp_path, bundle):
    silent = AudioStatus(available=False, reason="no sound card in the test")
    window = MainWindow(silent, state_dir=tmp_path / "config", model=bundle, offer_reopen=False,
                        output_device="no-such-card")  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window._model is not None, timeout=JOB_MS)
    label = window.statusBar().findChild(QLabel, "playerStatus")
    assert label.text().startswith("cannot play: ") and "no-such-card" in label.text()
    assert not window.play_action.isEnabled()
    new_song(qtbot, window, tmp_path / "song.cocompose")
    window.generate_panel.branches.setValue(1)
    window.generate_panel.seconds.setValue(0.5)
    run_job(qtbot, window, "generate", lambda: window.generate_panel.request("generate"))
    take = children_of(window, 1)[0]
    window.select_take(take)
    wait_loaded(qtbot, window, take)  # the song is still gathered (and drawn), only not heard
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
    assert window.playback.player.status().state is PlayerState.UNAVAILABLE
    assert window.playback.waveform.audio_duration == pytest.approx(0.5, abs=0.02)
    window.close()
