"""cocompose.recording: takes recorded from the JACK dummy card while the Player plays into its input.

The player's output is wired to the recorder's input with jack_connect, so a take can be compared with
what was played sample for sample.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from cocompose.playback import AudioSource, Player, PlayerState
from cocompose.recording import CountIn, Level, Recorder, RecorderState, RecordingError, Take
from tests.jack_loop import connect_first_output_to_first_input, heard, noise, wait_until

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 48_000


@pytest.fixture
def rig(jack_server):
    """A player and a recorder on the JACK card, the player's output wired into the recorder's input."""
    player = Player(jack_server.device)
    recorder = Recorder(jack_server.device)
    assert player.open().state is PlayerState.STOPPED, player.status().message
    assert recorder.open().state is RecorderState.IDLE, recorder.status().message
    connect_first_output_to_first_input()
    yield player, recorder
    recorder.close()
    player.close()


def play_through(player: Player, audio: np.ndarray) -> None:
    player.load(AudioSource(SR, audio))
    player.play()
    wait_until(lambda: player.status().state is PlayerState.STOPPED, what="the end of what was played")
    time.sleep(0.05)


def test_a_take_holds_exactly_what_was_played_and_the_meter_follows_it(rig):
    player, recorder = rig
    time.sleep(0.1)
    assert recorder.take_level() == Level(0.0, 0.0)  # the card's input is silent

    audio = noise(0.5, SR, seed=20, amplitude=0.3)
    status = recorder.start()
    assert status.state is RecorderState.RECORDING
    player.load(AudioSource(SR, audio))
    player.play()
    time.sleep(0.25)
    level = recorder.take_level()
    assert recorder.status().seconds > 0.1
    wait_until(lambda: player.status().state is PlayerState.STOPPED, what="the end of the noise")
    time.sleep(0.05)
    take = recorder.stop()

    assert take is not None and take.sample_rate == SR
    np.testing.assert_array_equal(heard(take.audio), audio)
    assert level.peak == pytest.approx(0.3, abs=0.01)  # uniform noise: the peak nears the amplitude
    assert 0.1 < level.rms <= 0.3 / np.sqrt(3) + 0.01
    assert level.peak_dbfs == pytest.approx(20 * np.log10(level.peak))
    assert recorder.status().state is RecorderState.IDLE
    assert recorder.stop() is None  # nothing since


def test_the_count_in_is_not_part_of_the_take(rig):
    player, recorder = rig
    count_in = CountIn(beats=2, bpm=240)  # half a second
    audio = noise(1.0, SR, seed=21)
    changes = []
    recorder.add_listener(changes.append)
    assert recorder.start(count_in).state is RecorderState.COUNTING_IN
    play_through(player, audio)
    take = recorder.stop()

    # The player started with the count-in, so the take is the played audio less about its first half
    # second (the two streams start within a JACK period or two of each other).
    recorded = heard(take.audio)
    skipped = len(audio) - len(recorded)
    assert abs(skipped - count_in.seconds * SR) <= 4 * 256
    np.testing.assert_array_equal(recorded, audio[skipped:])
    states = [status.state for status in changes]
    assert RecorderState.RECORDING in states
    # The take knows the beat it was played to: the count-in's, with a beat on its first sample.
    assert (take.click_bpm, take.click_start_seconds) == (240, 0.0)


def test_a_trimmed_take_is_the_slice_and_bad_trims_are_named():
    take = Take(noise(1.0, SR, seed=22), SR, click_bpm=120.0)
    trimmed = take.trimmed(0.1, 0.25)
    np.testing.assert_array_equal(trimmed.audio, take.audio[4800:12000])
    assert (trimmed.click_bpm, trimmed.click_start_seconds) == (120.0, -0.1)  # the beat stays put
    assert trimmed.duration == pytest.approx(0.15)
    np.testing.assert_array_equal(take.trimmed(0.5).audio, take.audio[24000:])
    for start, end in [(-0.1, 0.5), (0.5, 0.5), (0.6, 0.5), (0.0, 1.5), (float("nan"), 0.5)]:
        with pytest.raises(ValueError, match="trim"):
            take.trimmed(start, end)


def test_a_take_saved_as_wav_reads_back_identically_and_replaces_atomically(tmp_path):
    take = Take(noise(0.3, SR, seed=23), SR)
    target = tmp_path / "riff.wav"
    target.write_bytes(b"an older riff")
    assert take.save_wav(target) == target
    audio, rate = soundfile.read(target, dtype="float32")
    assert rate == SR
    np.testing.assert_array_equal(audio, take.audio)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["riff.wav"]  # no temporary left behind


def test_saving_a_take_refuses_a_missing_folder_and_an_empty_take(tmp_path):
    take = Take(noise(0.1, SR, seed=24), SR)
    with pytest.raises(RecordingError, match="does not exist"):
        take.save_wav(tmp_path / "nowhere" / "riff.wav")
    with pytest.raises(RecordingError, match="empty"):
        Take(np.zeros(0, np.float32), SR).save_wav(tmp_path / "riff.wav")
    assert list(tmp_path.iterdir()) == []


def test_a_take_plays_back_through_the_player(rig):
    player, recorder = rig
    take = Take(noise(0.2, SR, seed=25), SR)
    source = take.source()
    assert source.complete and source.duration == pytest.approx(take.duration)
    recorder.start()
    play_through(player, source.audio())
    np.testing.assert_array_equal(heard(recorder.stop().audio), take.audio)


def test_count_in_clicks_fall_on_the_beats_and_bad_count_ins_are_named():
    count_in = CountIn(beats=4, bpm=120)
    clicks = count_in.click_track(SR)
    assert len(clicks) == 2 * SR
    onsets = [i for i in range(1, len(clicks)) if clicks[i - 1] == 0 and clicks[i] != 0] + (
        [0] if clicks[0] != 0 else []
    )
    beat = SR // 2
    # Each blip starts at sin(0) = 0, so its first non-zero sample is the one after the beat.
    assert sorted(onsets) == [0 * beat + 1, 1 * beat + 1, 2 * beat + 1, 3 * beat + 1]
    assert np.max(np.abs(clicks)) <= 0.5
    with pytest.raises(ValueError, match="beats"):
        CountIn(beats=-1)
    with pytest.raises(ValueError, match="tempo"):
        CountIn(bpm=0)


def test_an_unknown_input_device_says_why_it_cannot_record(jack_server):
    recorder = Recorder("no-such-microphone")
    for status in (recorder.status(), recorder.open(), recorder.start(CountIn())):
        assert status.state is RecorderState.UNAVAILABLE
        assert status.message.startswith("cannot record: ") and "no-such-microphone" in status.message
    assert recorder.stop() is None
    recorder.close()


INPUT_LOSS_PROBE = """
import os, shlex, subprocess, sys, time
jackd = subprocess.Popen(shlex.split(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
from cocompose.recording import Recorder
recorder = Recorder()
print(recorder.start().state.value, flush=True)
time.sleep(0.5)
jackd.terminate(); jackd.wait()
deadline = time.monotonic() + 5
while recorder.status().state.value != "failed" and time.monotonic() < deadline:
    time.sleep(0.01)
status = recorder.status()
print(status.state.value, flush=True)
print(status.message, flush=True)
take = recorder.stop()
print(take is not None and take.duration > 0.3, flush=True)
os._exit(0)  # PortAudio cannot shut down cleanly once its JACK server is gone
"""


@pytest.mark.audio
def test_an_input_device_that_fails_mid_take_is_reported_and_the_take_is_kept(jack_server):
    from tests.conftest import JACK_ENV, JACKD_COMMAND

    env = {**os.environ, **JACK_ENV, "JACK_DEFAULT_SERVER": f"cocompose-input-loss-{os.getpid()}"}
    result = subprocess.run(
        [sys.executable, "-c", INPUT_LOSS_PROBE, " ".join(JACKD_COMMAND)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout + result.stderr
    assert lines[0] == "recording"
    assert lines[1] == "failed"
    assert lines[2].startswith("the input device 'system' stopped") and "disconnected?" in lines[2]
    assert lines[3] == "True"


def test_an_error_in_the_input_callback_fails_the_take_and_leaves_the_device_usable(rig, monkeypatch):
    player, recorder = rig
    recorder.start()
    wait_until(lambda: recorder.status().state is RecorderState.RECORDING, what="the take to start")

    def out_of_memory(block, frames):
        raise MemoryError("no room for the next block")

    monkeypatch.setattr(recorder, "_keep", out_of_memory)
    wait_until(lambda: recorder.status().state is RecorderState.FAILED, what="the failure to be reported")
    assert "MemoryError: no room for the next block" in recorder.status().message
    monkeypatch.undo()

    # The stream was closed properly (its JACK ports released): a fresh recorder records at once, and
    # this one starts again on a new stream.
    again = Recorder(recorder.status().device)
    try:
        assert again.open().state is RecorderState.IDLE, again.status().message
    finally:
        again.close()
    audio = noise(0.3, SR, seed=23, amplitude=0.3)
    assert recorder.start().state is RecorderState.RECORDING, recorder.status().message
    connect_first_output_to_first_input()
    play_through(player, audio)
    take = recorder.stop()
    assert take is not None
    np.testing.assert_array_equal(heard(take.audio), audio)
