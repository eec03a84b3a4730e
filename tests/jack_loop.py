"""Helpers for tests that listen to what we play: capture the JACK dummy card's input, and wire our own
output port to it with jack_connect, so a test hears exactly what the player sent."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import numpy as np

from cocompose.audio_io import _sounddevice


def jack_ports() -> list[str]:
    listing = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True, timeout=10)
    return listing.stdout.split()


def our_ports(kind: str) -> list[str]:
    """PortAudio's own JACK ports of one kind ("out" or "in"), in order; the card's are "system:"."""
    return [port for port in jack_ports() if not port.startswith("system:") and f":{kind}_" in port]


def connect_first_output_to_first_input() -> None:
    outs, ins = our_ports("out"), our_ports("in")
    assert outs and ins, f"no stream of ours is open; JACK has {jack_ports()}"
    subprocess.run(["jack_connect", outs[0], ins[0]], check=True, timeout=10)


def connect_system_capture_to(port: str) -> None:
    subprocess.run(["jack_connect", "system:capture_1", port], check=True, timeout=10)


class Capture:
    """Records channel 1 of the JACK card's input for as long as it is open (a context manager)."""

    def __init__(self, device: int, sample_rate: int) -> None:
        self._blocks: list[np.ndarray] = []
        sd = _sounddevice()
        self._stream = sd.InputStream(
            device=device, samplerate=sample_rate, channels=1, dtype="float32", callback=self._keep
        )

    def _keep(self, indata: np.ndarray, frames: int, _time: object, _status: object) -> None:
        self._blocks.append(indata[:, 0].copy())

    def __enter__(self) -> Capture:
        self._stream.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.stop()
        self._stream.close()

    def audio(self) -> np.ndarray:
        blocks = list(self._blocks)
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def noise(seconds: float, sr: int, seed: int, amplitude: float = 0.3) -> np.ndarray:
    """Seeded noise: no two stretches alike, so a recording can be matched sample for sample."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1, 1, round(seconds * sr))).astype(np.float32)


def heard(recording: np.ndarray) -> np.ndarray:
    """The recording from the first sound to the last (the silence before and after the sound trimmed)."""
    nonzero = np.flatnonzero(recording)
    if len(nonzero) == 0:
        return recording[:0]
    return recording[nonzero[0] : nonzero[-1] + 1]
