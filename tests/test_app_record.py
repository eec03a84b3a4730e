"""Record a riff in the real main window: the record dialog takes what the window's player sends into the
JACK dummy card's input, plays the VQ-VAE's reconstruction of it (through the session, never torch in the
ui), and "Prime from it" starts the song from it: the tree's start holds the riff's codes, the riff is kept
as a WAV, and the window plays the primed song."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

from cocompose.playback import AudioSource, PlayerState
from cocompose.recording import RecorderState
from cocompose.song import NodeState
from tests.compose_model import write_tiny_bundle
from tests.jack_loop import connect_first_output_to_first_input, heard
from tests.test_app_flow import new_song, open_window
from ui.record_dialog import RecordDialog

pytestmark = [pytest.mark.qt, pytest.mark.audio, pytest.mark.usefixtures("one_thread")]
JOB_MS = 60_000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True)


def tone(seconds: float, rate: int, hz: float = 330.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_record_a_riff_hear_its_reconstruction_and_prime_the_song_from_it(
    qtbot, tmp_path, bundle, jack_server
):
    config = tmp_path / "config"
    window = open_window(qtbot, config, bundle, jack_server=jack_server)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    qtbot.waitUntil(lambda: window.playing_take() == 1, timeout=JOB_MS)  # the empty start of the song
    player = window.playback.player

    window.record_action.trigger()
    dialog = window.findChild(RecordDialog, "recordDialog")
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.recorder.status().state is RecorderState.IDLE, dialog.recorder.status().message
    assert dialog.device_combo.currentText().startswith("system")
    connect_first_output_to_first_input()  # the window's player into the dialog's input

    dialog.beats.setValue(0)
    qtbot.mouseClick(dialog.record_button, Qt.MouseButton.LeftButton)
    riff = tone(0.8, jack_server.sample_rate)
    player.load(AudioSource(jack_server.sample_rate, riff))
    player.play()
    qtbot.waitUntil(lambda: dialog.meter.value() > 400, timeout=3000)  # the meter sees the tone
    qtbot.waitUntil(lambda: player.status().state is PlayerState.STOPPED, timeout=5000)
    qtbot.wait(50)
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    take = dialog.take()
    np.testing.assert_array_equal(heard(take.audio), heard(riff))  # recorded exactly what was played

    # The reconstruction goes through the session's engine, off the GUI thread, and plays.
    model_rate = window._model.sample_rate
    qtbot.mouseClick(dialog.play_reconstruction_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: player.source is not None and player.source.sample_rate == model_rate, timeout=JOB_MS
    )
    expected, rate = window.session.reconstruct(take.audio, take.sample_rate)
    assert rate == model_rate
    np.testing.assert_allclose(player.source.audio(), expected, atol=1e-5)
    assert np.abs(expected).max() > 0.01

    with qtbot.waitSignal(window.bridge.projectChanged, timeout=JOB_MS):
        qtbot.mouseClick(dialog.prime_button, Qt.MouseButton.LeftButton)
    hop = round(model_rate / window._model.codes_per_second)
    codes = len(window.session.engine.encode_prime(take.audio, take.sample_rate))
    qtbot.waitUntil(lambda: len(window._mirror.root.codes) == codes, timeout=JOB_MS)
    root = window._mirror.root
    assert root.state is NodeState.DONE and codes > 0
    assert abs(codes * hop / model_rate - take.duration) < 2 * hop / model_rate
    assert window.tree_model.rowCount() == 1  # the tree shows the primed start, and nothing was lost

    # The riff itself is kept, whatever happens to the song.
    kept = sorted((config / "recordings").glob("riff-*.wav"))
    assert len(kept) == 1
    audio, rate = sf.read(kept[0], dtype="float32")
    assert rate == take.sample_rate
    np.testing.assert_array_equal(audio, take.audio)

    # The window has the song back: the primed start, heard through the preview of its codes.
    qtbot.waitUntil(lambda: window.playing_take() == root.id and window.playback.playing.source.frames > 0,
                    timeout=JOB_MS)  # fmt: skip
    assert window.playback.playing.source.frames == codes * hop
    window.close()
