"""What the Player and the Recorder share: finding a device, opening a stream, and letting go of a dead one.

Qt-free and torch-free. Everything here turns PortAudio's failures into a `StreamUnavailable` whose
message a user can read; nothing else escapes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cocompose.audio_io import AudioUnavailable, _sounddevice


class StreamUnavailable(RuntimeError):
    """A stream could not be opened or started; the message says why, in words for the user."""


@dataclass(frozen=True)
class DeviceChoice:
    """The device a stream will use: PortAudio's index, its name, and its preferred rate and channels."""

    index: int
    name: str
    sample_rate: int
    channels: int


def resolve_device(device: int | str | None, kind: str) -> DeviceChoice:
    """Find the `kind` ("output" or "input") device meant by `device` (index, name part, or None: default).

    Raises StreamUnavailable naming the problem: no PortAudio, no such device, or one with no such side.
    """
    try:
        sd = _sounddevice()
    except AudioUnavailable as exc:
        raise StreamUnavailable(str(exc)) from exc
    channels_key = f"max_{kind}_channels"
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            raise StreamUnavailable(f"no sound {kind} device found") from exc
        raise StreamUnavailable(f"no sound {kind} device matches {device!r} ({exc})") from exc
    if info[channels_key] < 1:
        raise StreamUnavailable(f"the device {info['name']!r} has no {kind} channels")
    return DeviceChoice(
        index=int(info["index"]),
        name=str(info["name"]),
        sample_rate=round(info["default_samplerate"]),
        channels=int(info[channels_key]),
    )


def open_stream(kind: str, choice: DeviceChoice, channels: int, callback: Any, finished: Any) -> Any:
    """Open (not start) a float32 `kind` stream at `choice`'s preferred rate. Raises StreamUnavailable."""
    sd = _sounddevice()
    factory = sd.OutputStream if kind == "output" else sd.InputStream
    try:
        return factory(
            device=choice.index,
            samplerate=choice.sample_rate,
            channels=channels,
            dtype="float32",
            latency="low",
            callback=callback,
            finished_callback=finished,
        )
    except (sd.PortAudioError, ValueError) as exc:
        raise StreamUnavailable(f"the sound device {choice.name!r} failed to open: {exc}") from exc


def port_audio_error(exc: BaseException) -> bool:
    """Whether `exc` is one of PortAudio's own errors (as opposed to a bug of ours)."""
    try:
        sd = _sounddevice()
    except AudioUnavailable:
        return False
    return isinstance(exc, sd.PortAudioError)


# Long enough for any healthy device (they close in milliseconds); short enough that quitting never hangs.
CLOSE_WAIT_SECONDS = 2.0


def release(stream: Any, wait_s: float = CLOSE_WAIT_SECONDS) -> bool:
    """Abort and close `stream`, waiting at most `wait_s` seconds; True when it closed in that time.

    PortAudio's JACK host blocks in abort() and close() for as long as its server is gone or stalled (one
    that died, or one too starved to answer), so the closing runs on a daemon thread: a healthy device
    closes at once and the caller goes on; a stuck one is left behind after wait_s (0: never waited on).
    """
    closed = threading.Event()

    def close_quietly() -> None:
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception:  # the device died while closing: nothing left to release, nobody left to tell
            pass
        closed.set()

    threading.Thread(target=close_quietly, name="cocompose-close-stream", daemon=True).start()
    return closed.wait(wait_s)
