"""cocompose.playback: AudioSource invariants, and the Player heard through the JACK dummy card.

Each audio test wires the player's first output port to a capture of the card's first input, so the test
hears exactly what the player sent. JACK passes float32 through untouched, so "what was heard" can be
compared with the source sample for sample: a gap, a repeat or a jump would break the equality.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from cocompose.playback import AudioSource, Player, PlayerState
from tests.jack_loop import Capture, connect_first_output_to_first_input, heard, noise, wait_until
from tests.test_audio_device import _PortAudioMissing

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 48_000


# --- AudioSource, no device ----------------------------------------------------------------------------


def test_a_source_grows_and_what_was_read_never_changes():
    source = AudioSource(SR, complete=False)
    parts = [noise(0.05 * (i + 1), SR, seed=i) for i in range(6)]
    snapshots = []
    for part in parts:
        source.append(part)
        data, frames, complete = source.snapshot()
        snapshots.append((data, frames, data[:frames].copy()))
        assert not complete
    for data, frames, copy in snapshots:  # appends (and the copies of growth) left old views intact
        np.testing.assert_array_equal(data[:frames], copy)
    np.testing.assert_array_equal(source.audio(), np.concatenate(parts))
    assert source.duration == pytest.approx(sum(len(p) for p in parts) / SR)
    source.finish()
    assert source.complete
    with pytest.raises(ValueError, match="finished"):
        source.append(parts[0])


def test_a_source_converted_while_growing_equals_a_one_shot_conversion():
    audio = noise(1.0, 16_000, seed=3)
    growing = AudioSource(16_000, complete=False)
    converted = growing.at_rate(SR)
    assert growing.at_rate(SR) is converted and growing.at_rate(16_000) is growing
    for start in range(0, len(audio), 1234):
        growing.append(audio[start : start + 1234])
    assert not converted.complete
    growing.finish()
    assert converted.complete
    np.testing.assert_array_equal(converted.audio(), soxr.resample(audio, 16_000, SR, quality="HQ"))


def test_appends_from_another_thread_arrive_whole_and_in_order():
    source = AudioSource(SR, complete=False)
    parts = [noise(0.01, SR, seed=i) for i in range(200)]
    seen = []

    def reader():
        while not source.complete:
            seen.append(source.snapshot()[1])

    thread = threading.Thread(target=reader)
    thread.start()
    for part in parts:
        source.append(part)
    source.finish()
    thread.join()
    assert seen == sorted(seen)
    np.testing.assert_array_equal(source.audio(), np.concatenate(parts))


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros((10, 2), np.float32), "mono"),
        (np.zeros(10, np.int16), "floating point"),
        (np.array([0.0, np.inf], np.float32), "NaN or infinite"),
    ],
)
def test_a_source_refuses_bad_audio_by_name(audio, message):
    with pytest.raises(ValueError, match=message):
        AudioSource(SR, audio)


def test_a_source_refuses_a_bad_rate():
    with pytest.raises(ValueError, match="sample rate"):
        AudioSource(0)


# --- no device -----------------------------------------------------------------------------------------


def _every_call_is_harmless(player: Player) -> None:
    source = AudioSource(SR, noise(0.1, SR, seed=1))
    for call in (
        player.open,
        lambda: player.load(source),
        player.play,
        player.toggle,
        lambda: player.switch(source),
        lambda: player.seek(0.05),
        lambda: player.set_loop(0.0, 0.05),
        player.pause,
        player.stop,
    ):
        assert call().state is PlayerState.UNAVAILABLE
    player.close()


def test_an_unknown_device_makes_a_player_that_says_why_it_cannot_play(jack_server):
    player = Player("no-such-card")
    status = player.status()
    assert status.state is PlayerState.UNAVAILABLE
    assert status.message.startswith("cannot play: ")
    assert "no-such-card" in status.message
    _every_call_is_harmless(player)


def test_without_portaudio_the_player_says_why_and_every_call_is_a_no_op(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_PortAudioMissing(), *sys.meta_path])
    player = Player()
    assert player.status().message.startswith("cannot play: PortAudio library not found")
    _every_call_is_harmless(player)


# --- through the JACK dummy card -----------------------------------------------------------------------


@pytest.fixture
def player(jack_server):
    player = Player(jack_server.device)
    assert player.open().state is PlayerState.STOPPED, player.status().message
    yield player
    player.close()


@pytest.fixture
def capture(jack_server, player):
    """What the player sends, heard back through JACK (the player's stream is already open)."""
    with Capture(jack_server.device, jack_server.sample_rate) as capture:
        connect_first_output_to_first_input()
        yield capture


def play_to_the_end(player: Player, timeout: float = 10.0) -> None:
    player.play()
    wait_until(lambda: player.status().state is PlayerState.STOPPED, timeout, "the end of the source")
    time.sleep(0.05)  # the last block travels through the loop back into the capture


def test_a_source_is_heard_exactly_and_playback_starts_at_once(player, capture, jack_server):
    assert player.sample_rate == jack_server.sample_rate
    audio = noise(0.5, SR, seed=10)
    player.load(AudioSource(SR, audio))
    started = time.monotonic()
    status = player.play()
    assert time.monotonic() - started < 0.05  # the stream was open: play() only starts it
    assert status.state is PlayerState.PLAYING
    play_to_the_end(player)

    np.testing.assert_array_equal(heard(capture.audio()), audio)
    status = player.status()
    assert status.position == pytest.approx(0.5) and status.duration == pytest.approx(0.5)


def test_switching_source_mid_play_keeps_the_position_with_no_gap(player, capture):
    a, b = noise(1.5, SR, seed=1), noise(1.5, SR, seed=2)
    player.load(AudioSource(SR, a))
    player.play()
    time.sleep(0.4)
    before = player.position
    status = player.switch(AudioSource(SR, b))
    assert before <= status.position < before + 0.05
    play_to_the_end(player)

    recording = heard(capture.audio())
    assert len(recording) == len(a)
    switched_at = int(np.flatnonzero(recording != a)[0])
    assert 0.3 * SR < switched_at < 0.6 * SR
    # Sample for sample: A up to the switch, then B from the very same frame on.
    np.testing.assert_array_equal(recording, np.concatenate([a[:switched_at], b[switched_at:]]))


def test_a_growing_source_plays_what_arrives_after_waiting_in_silence(player, capture):
    first, second = noise(0.2, SR, seed=4), noise(0.3, SR, seed=5)
    source = AudioSource(SR, first, complete=False)
    changes = []
    player.add_listener(changes.append)
    player.load(source)
    player.play()
    wait_until(lambda: player.status().waiting, what="the player to run out of audio")
    assert player.status().state is PlayerState.PLAYING
    assert player.position == pytest.approx(0.2)
    time.sleep(0.2)
    source.append(second)
    source.finish()
    play_to_the_end(player)

    recording = heard(capture.audio())
    np.testing.assert_array_equal(recording[: len(first)], first)
    np.testing.assert_array_equal(recording[-len(second) :], second)
    gap = recording[len(first) : -len(second)]
    assert len(gap) > 0.1 * SR and not gap.any()
    assert any(status.waiting for status in changes)
    assert changes[-1].state is PlayerState.STOPPED


def test_a_loop_region_repeats_exactly(player, capture):
    audio = noise(1.0, SR, seed=6)
    player.load(AudioSource(SR, audio))
    status = player.set_loop(0.2, 0.3)
    assert status.loop == (pytest.approx(0.2), pytest.approx(0.3))
    assert status.position == pytest.approx(0.2)  # the playhead jumps into the loop
    player.play()
    time.sleep(0.45)
    player.pause()
    time.sleep(0.05)

    recording = heard(capture.audio())
    region = audio[round(0.2 * SR) : round(0.3 * SR)]
    assert len(recording) > 3 * len(region)
    np.testing.assert_array_equal(recording, np.resize(region, len(recording)))


def test_seek_and_pause_move_the_playhead_and_resume_where_it_was(player, capture):
    audio = noise(1.0, SR, seed=7)
    player.load(AudioSource(SR, audio))
    assert player.seek(-3).position == 0.0
    assert player.seek(99).position == pytest.approx(1.0)
    assert player.seek(0.25).position == pytest.approx(0.25)
    player.play()
    time.sleep(0.2)
    paused_at = player.pause().position
    time.sleep(0.1)
    assert player.position == paused_at  # paused: the playhead holds still
    play_to_the_end(player)

    # From 0.25 s to the end with nothing lost or repeated across the pause (the silence is cut out).
    recording = heard(capture.audio())
    nonzero = recording[recording != 0]
    np.testing.assert_array_equal(nonzero, audio[round(0.25 * SR) :][audio[round(0.25 * SR) :] != 0])


def test_a_source_at_another_rate_is_resampled_to_the_device(player, capture):
    audio = noise(0.5, 16_000, seed=8)
    player.load(AudioSource(16_000, audio))
    assert player.status().duration == pytest.approx(0.5)
    play_to_the_end(player)
    expected = soxr.resample(audio, 16_000, SR, quality="HQ")
    np.testing.assert_array_equal(heard(capture.audio()), heard(expected))


def test_space_after_the_end_plays_again_from_the_start(player, capture):
    audio = noise(0.2, SR, seed=9)
    player.load(AudioSource(SR, audio))
    play_to_the_end(player)
    play_to_the_end(player)
    recording = capture.audio()
    start = np.flatnonzero(recording)[0]
    np.testing.assert_array_equal(recording[start : start + len(audio)], audio)
    np.testing.assert_array_equal(heard(recording[start + len(audio) :]), audio)


class _BrokenSource(AudioSource):
    """A source whose reads start failing: stands in for any error inside the audio callback."""

    def __init__(self, audio: np.ndarray) -> None:
        super().__init__(SR, audio)
        self.reads = 0

    def snapshot(self):
        self.reads += 1
        if self.reads > 20:
            raise RuntimeError("the buffer went away")
        return super().snapshot()


def test_an_error_in_the_audio_callback_becomes_a_failed_state_and_play_recovers(
    jack_server, player, capture
):
    changes = []
    player.add_listener(changes.append)
    player.load(_BrokenSource(noise(2.0, SR, seed=11)))
    player.play()
    wait_until(lambda: player.status().state is PlayerState.FAILED, what="the failure to be reported")
    message = player.status().message
    assert "RuntimeError: the buffer went away" in message
    wait_until(lambda: any(s.state is PlayerState.FAILED for s in changes), what="the listener")

    # The app goes on: a good source plays (the device was never at fault, so its stream was kept).
    audio = noise(0.2, SR, seed=12)
    player.load(AudioSource(SR, audio))
    assert player.play().state is PlayerState.PLAYING
    wait_until(lambda: player.status().state is PlayerState.STOPPED, what="the second source to end")
    assert player.status().message == ""

    # Nothing of the failed stream lingers in the sound server: once this player lets go, another opens.
    player.close()
    again = Player(jack_server.device)
    try:
        assert again.open().state is PlayerState.STOPPED, again.status().message
    finally:
        again.close()


DEVICE_LOSS_PROBE = """
import os, shlex, subprocess, sys, time
import numpy as np
jackd = subprocess.Popen(shlex.split(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
from cocompose.playback import AudioSource, Player
player = Player()
heard = []
player.add_listener(lambda status: heard.append(status))
player.load(AudioSource(48000, np.full(48000 * 30, 0.1, np.float32)))
print(player.play().state.value, flush=True)
time.sleep(0.3)
jackd.terminate(); jackd.wait()
deadline = time.monotonic() + 5
def told():
    return any(s.state.value == "failed" for s in list(heard))
# Listeners hear about the failure from the player's own thread, a moment after the state changes.
while (player.status().state.value != "failed" or not told()) and time.monotonic() < deadline:
    time.sleep(0.01)
status = player.status()
print(status.state.value, flush=True)
print(status.message, flush=True)
print(told(), flush=True)
player.play(); player.pause(); player.seek(1.0)  # none of these may hang or raise
print("alive", flush=True)
os._exit(0)  # PortAudio cannot shut down cleanly once its JACK server is gone
"""


@pytest.mark.audio
def test_a_device_that_disappears_while_playing_is_reported_and_nothing_hangs(jack_server):
    # A JACK server of its own in a child process, killed mid-play: the session's card stays up.
    from tests.conftest import JACK_ENV, JACKD_COMMAND

    env = {**os.environ, **JACK_ENV, "JACK_DEFAULT_SERVER": f"cocompose-loss-{os.getpid()}"}
    result = subprocess.run(
        [sys.executable, "-c", DEVICE_LOSS_PROBE, " ".join(JACKD_COMMAND)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout + result.stderr
    assert lines[0] == "playing"
    assert lines[1] == "failed"
    # PortAudio either reports the stream finished or simply stops calling back; both read the same.
    assert lines[2].startswith("the sound device 'system' stopped") and "disconnected?" in lines[2]
    assert lines[3] == "True"
    assert lines[4] == "alive"
