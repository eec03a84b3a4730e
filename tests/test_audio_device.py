"""cocompose.audio_io against a real PortAudio: JACK's dummy card for sound, and no PortAudio at all."""

from __future__ import annotations

import importlib.abc
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cocompose import audio_io
from cocompose.audio_io import AudioUnavailable


def sine(freq: float, seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[np.argmax(spectrum)])


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def jack_ports() -> list[str]:
    listing = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True, timeout=10)
    return listing.stdout.split()


def our_jack_ports() -> list[str]:
    """The ports of PortAudio's JACK client, i.e. of a stream we have open; the card's are "system:"."""
    return [port for port in jack_ports() if not port.startswith("system:")]


def loop_our_output_into_our_input(timeout: float = 5.0) -> None:
    """Wait for PortAudio's JACK client to appear, then wire its first output port to its first input port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ours = our_jack_ports()
        outs = [port for port in ours if ":out_" in port]
        ins = [port for port in ours if ":in_" in port]
        if outs and ins:
            subprocess.run(["jack_connect", outs[0], ins[0]], check=True, timeout=10)
            return
        time.sleep(0.01)
    raise AssertionError(f"PortAudio's JACK ports never appeared; JACK has {jack_ports()}")


# --- with the JACK dummy sound card ------------------------------------------------------------------


@pytest.mark.audio
def test_the_jack_card_is_listed_and_reported_as_available(jack_server):
    card = next(device for device in audio_io.list_devices() if device.index == jack_server.device)
    assert card.host_api.startswith("JACK")
    assert (card.max_input_channels, card.max_output_channels) == (2, 2)
    assert card.default_sample_rate == jack_server.sample_rate

    status = audio_io.audio_status()
    assert status.available, status.reason
    assert status.default_output == card.name
    assert status.summary() == f"Audio: {card.name} ({card.host_api}, 2 in / 2 out)"


@pytest.mark.audio
def test_recording_with_nothing_connected_is_silent(jack_server):
    recording = audio_io.record(0.25, jack_server.sample_rate, channels=2, device=jack_server.device)
    assert recording.shape == (jack_server.sample_rate // 4, 2)
    assert np.max(np.abs(recording)) == 0.0


@pytest.mark.audio
def test_a_played_tone_comes_back_through_a_jack_loopback(jack_server):
    sr = jack_server.sample_rate
    tone = sine(440.0, seconds=2.0, sr=sr, amplitude=0.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        recording = pool.submit(audio_io.playrec, tone, sr, channels=1, device=jack_server.device)
        loop_our_output_into_our_input()
        recorded = recording.result(timeout=30)[:, 0]

    # The loop is wired a few JACK periods after the stream starts; judge the last second only.
    last_second = recorded[-sr:]
    assert dominant_frequency(last_second, sr) == pytest.approx(440.0, abs=2.0)
    assert rms(last_second) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


@pytest.mark.audio
def test_non_blocking_play_returns_at_once_and_stop_ends_it(jack_server):
    sr = jack_server.sample_rate
    started = time.monotonic()
    audio_io.play(sine(440.0, seconds=10.0, sr=sr), sr, device=jack_server.device, blocking=False)
    assert time.monotonic() - started < 2.0
    assert any(":out_" in port for port in our_jack_ports()), "no stream is playing"

    audio_io.stop()
    assert our_jack_ports() == []


@pytest.mark.audio
def test_an_unknown_device_name_raises_audio_unavailable(jack_server):
    with pytest.raises(AudioUnavailable, match="no-such-card"):
        audio_io.play(sine(440.0, 0.1, jack_server.sample_rate), jack_server.sample_rate, "no-such-card")


# --- without PortAudio -------------------------------------------------------------------------------


class _PortAudioMissing(importlib.abc.MetaPathFinder):
    """Makes `import sounddevice` fail the way it does on a machine without libportaudio2."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


@pytest.fixture
def portaudio_missing(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_PortAudioMissing(), *sys.meta_path])


def test_missing_portaudio_is_reported_with_its_reason(portaudio_missing):
    status = audio_io.audio_status()
    assert not status.available
    assert "PortAudio library not found" in status.reason
    assert "libportaudio2" in status.reason
    assert status.summary() == f"Audio unavailable: {status.reason}"


def test_missing_portaudio_makes_every_call_raise_audio_unavailable(portaudio_missing):
    tone = sine(440.0, 0.1, 48_000)
    calls = [
        lambda: audio_io.list_devices(),
        lambda: audio_io.play(tone, 48_000),
        lambda: audio_io.record(0.1, 48_000),
        lambda: audio_io.playrec(tone, 48_000),
    ]
    for call in calls:
        with pytest.raises(AudioUnavailable, match="PortAudio library not found"):
            call()


def test_importing_audio_io_does_not_load_portaudio():
    probe = "import sys, cocompose.audio_io; print('sounddevice' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_no_sound_card_is_reported_not_raised():
    # A fresh process whose JACK clients look for a server that does not exist: PortAudio loads but,
    # on a machine without a sound card (CI), finds no device.
    probe = (
        "import numpy as np\n"
        "from cocompose import audio_io\n"
        "if audio_io.list_devices(): print('HAS-CARD'); raise SystemExit\n"
        "print(audio_io.audio_status().summary())\n"
        "try: audio_io.play(np.zeros(100, np.float32), 48000)\n"
        "except audio_io.AudioUnavailable as exc: print('raised:', exc)\n"
    )
    env = {**os.environ, "JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": "cocompose-no-such-server"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("HAS-CARD"):
        pytest.skip("this machine has a real sound card")
    summary, raised = result.stdout.splitlines()
    assert summary == "Audio unavailable: no sound output device found"
    assert raised.startswith("raised: sound device failed:")


# --- bad input is refused before any device is touched -----------------------------------------------


@pytest.mark.parametrize(
    ("samples", "sr", "message"),
    [
        (np.zeros(0, np.float32), 48_000, "shaped"),
        (np.zeros((4, 2, 2), np.float32), 48_000, "shaped"),
        (np.zeros(100, np.int16), 48_000, "floating point"),
        (np.array([0.0, np.nan], np.float32), 48_000, "NaN"),
        (np.zeros(100, np.float32), 0, "sample rate"),
        (np.zeros(100, np.float32), 44_100.0, "sample rate"),
    ],
)
def test_play_refuses_bad_input_with_a_clear_message(portaudio_missing, samples, sr, message):
    # With PortAudio missing, reaching the device would raise AudioUnavailable instead: the ValueError
    # proves the input was checked first.
    with pytest.raises(ValueError, match=message):
        audio_io.play(samples, sr)


def test_record_refuses_a_duration_shorter_than_one_sample(portaudio_missing):
    with pytest.raises(ValueError, match="at least one sample"):
        audio_io.record(1e-9, 48_000)
