"""The record dialog on a real offscreen event loop, recording from the JACK dummy card's input while the
Player plays into it."""

from __future__ import annotations

import numpy as np
import pytest

from cocompose.playback import AudioSource, Player, PlayerState
from cocompose.recording import CountIn, RecorderState
from tests.jack_loop import connect_first_output_to_first_input, heard, noise, wait_until
from ui.record_dialog import RecordDialog

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]

SR = 48_000


def half_as_loud_at_16k(audio: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Stands in for the VQ-VAE (the dialog only needs audio back, at any rate)."""
    return 0.5 * audio[::3], rate // 3


@pytest.fixture
def rig(qtbot, jack_server):
    player = Player(jack_server.device)
    player.open()
    dialog = RecordDialog(player, reconstruct=half_as_loud_at_16k, device=jack_server.device)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.recorder.status().state is RecorderState.IDLE, dialog.recorder.status().message
    connect_first_output_to_first_input()  # the player's output into the dialog's input
    yield player, dialog
    dialog.reject()
    player.close()


def test_record_stop_trim_listen_and_prime(rig, qtbot):
    player, dialog = rig
    assert dialog.device_combo.currentText().startswith("system")
    assert not dialog.prime_button.isEnabled()
    dialog.beats.setValue(0)
    qtbot.mouseClick(dialog.record_button, qtbot_left())
    assert dialog.recorder.status().state is RecorderState.RECORDING
    assert not dialog.record_button.isEnabled() and dialog.stop_button.isEnabled()

    audio = noise(0.6, SR, seed=50, amplitude=0.5)
    player.load(AudioSource(SR, audio))
    player.play()
    qtbot.waitUntil(lambda: dialog.meter.value() > 500, timeout=2000)  # peak above -10 dBFS
    assert dialog.status_label.text().startswith("recording ")
    qtbot.waitUntil(lambda: player.status().state is PlayerState.STOPPED, timeout=5000)
    qtbot.wait(50)
    qtbot.mouseClick(dialog.stop_button, qtbot_left())

    take = dialog.take()
    np.testing.assert_array_equal(heard(take.audio), audio)
    assert dialog.trim_end.value() == pytest.approx(take.duration, abs=1e-3)
    dialog.trim_start.setValue(0.25)
    dialog.trim_end.setValue(0.5)
    trimmed = dialog.take()
    np.testing.assert_array_equal(trimmed.audio, take.trimmed(0.25, 0.5).audio)

    qtbot.mouseClick(dialog.play_take_button, qtbot_left())
    np.testing.assert_array_equal(player.source.audio(), trimmed.audio)
    assert player.status().state is PlayerState.PLAYING

    qtbot.mouseClick(dialog.play_reconstruction_button, qtbot_left())
    expected, rate = half_as_loud_at_16k(trimmed.audio, SR)
    qtbot.waitUntil(lambda: player.source.sample_rate == rate, timeout=5000)
    np.testing.assert_array_equal(player.source.audio(), expected)

    with qtbot.waitSignal(dialog.primeRequested) as primed:
        qtbot.mouseClick(dialog.prime_button, qtbot_left())
    np.testing.assert_array_equal(primed.args[0].audio, trimmed.audio)
    assert dialog.result() == RecordDialog.DialogCode.Accepted


def test_the_count_in_clicks_through_the_player_and_is_left_out_of_the_take(rig, qtbot):
    player, dialog = rig
    dialog.beats.setValue(2)
    dialog.bpm.setValue(240)
    qtbot.mouseClick(dialog.record_button, qtbot_left())
    assert dialog.recorder.status().state is RecorderState.COUNTING_IN
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("counting in… "), timeout=1000)
    np.testing.assert_array_equal(player.source.audio(), CountIn(2, 240).click_track(SR))
    qtbot.waitUntil(lambda: dialog.recorder.status().state is RecorderState.RECORDING, timeout=3000)
    qtbot.wait(200)
    qtbot.mouseClick(dialog.stop_button, qtbot_left())
    take = dialog.take()
    assert take.duration > 0.1
    assert not take.audio.any()  # the clicks ended with the count-in: the take itself is silent


def test_a_failing_reconstruction_is_shown_and_the_dialog_goes_on(qtbot, jack_server):
    def broken(audio, rate):
        raise MemoryError("out of memory on the device")

    player = Player(jack_server.device)
    dialog = RecordDialog(player, reconstruct=broken, device=jack_server.device)
    qtbot.addWidget(dialog)
    dialog.beats.setValue(0)
    dialog.start_recording()
    qtbot.wait(200)
    dialog.stop_recording()
    qtbot.mouseClick(dialog.play_reconstruction_button, qtbot_left())
    qtbot.waitUntil(
        lambda: "reconstruction failed: out of memory" in dialog.status_label.text(), timeout=3000
    )
    assert dialog.play_reconstruction_button.isEnabled() and dialog.prime_button.isEnabled()
    dialog.reject()
    player.close()


def test_without_an_input_device_the_dialog_says_why(qtbot, jack_server):
    dialog = RecordDialog(None, device="no-such-microphone")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("cannot record: "), timeout=1000)
    assert "no-such-microphone" in dialog.status_label.text()
    assert not dialog.record_button.isEnabled()
    assert not dialog.play_take_button.isEnabled() and not dialog.prime_button.isEnabled()
    dialog.reject()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_wait_until_reports_what_it_waited_for():
    with pytest.raises(AssertionError, match="the impossible"):
        wait_until(lambda: False, timeout=0.05, what="the impossible")
