"""Recording a riff: an input stream with a live level meter, a count-in, and the take as float32 audio.

The `Recorder` opens one sounddevice InputStream (mono: the device's first input) and keeps it running
while it is open, so the meter moves before anything is recorded. `start(count_in)` counts the count-in
off in the stream's own frames, then keeps every frame until `stop()`, which returns a `Take`. A device
that fails mid-take leaves the state FAILED with a message, and stop() still returns what was recorded:
nothing the user played is lost. Without a device the recorder is UNAVAILABLE ("cannot record: why").

`Take` is plain data: trim it, turn it into an `AudioSource` to play, save it as a WAV (atomically) to
prime from. `CountIn.click_track()` renders the clicks, for the caller to play through the Player at the
moment it calls start().

Threads: the audio callback takes one lock briefly; listeners run on the recorder's monitor thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from cocompose.audio_stream import (
    DeviceChoice,
    StreamUnavailable,
    open_stream,
    port_audio_error,
    release,
    resolve_device,
)
from cocompose.playback import AudioSource

_log = logging.getLogger(__name__)

MAX_TAKE_SECONDS = 600.0  # a take stops itself here, so a forgotten recorder cannot eat the memory
STALL_SECONDS = 2.0
_MONITOR_PERIOD = 0.05


class RecordingError(RuntimeError):
    """A take could not be saved; the message names the file and the reason."""


@dataclass(frozen=True)
class CountIn:
    """Beats counted before the take starts, at a tempo."""

    beats: int = 4
    bpm: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.beats, bool) or not isinstance(self.beats, int) or not 0 <= self.beats <= 16:
            raise ValueError(f"a count-in has 0 to 16 beats, got {self.beats!r}")
        if not (np.isfinite(self.bpm) and 20 <= self.bpm <= 400):
            raise ValueError(f"a count-in tempo is 20 to 400 beats per minute, got {self.bpm!r}")

    @property
    def seconds(self) -> float:
        return self.beats * 60.0 / self.bpm

    def click_track(self, sample_rate: int) -> np.ndarray:
        """The count-in as clicks: a short 1 kHz blip on each beat (the first one higher), float32 mono."""
        frames = round(self.seconds * sample_rate)
        track = np.zeros(frames, np.float32)
        blip = round(0.03 * sample_rate)
        t = np.arange(blip) / sample_rate
        envelope = np.exp(-t / 0.008)
        for beat in range(self.beats):
            start = round(beat * 60.0 / self.bpm * sample_rate)
            pitch = 1500.0 if beat == 0 else 1000.0
            length = min(blip, frames - start)
            track[start : start + length] = (0.5 * envelope * np.sin(2 * np.pi * pitch * t))[:length]
        return track


@dataclass(frozen=True)
class Level:
    """Peak and RMS of the input since the meter was last read, linear (1.0 is full scale)."""

    peak: float = 0.0
    rms: float = 0.0

    @property
    def peak_dbfs(self) -> float:
        return 20 * float(np.log10(max(self.peak, 1e-10)))

    @property
    def rms_dbfs(self) -> float:
        return 20 * float(np.log10(max(self.rms, 1e-10)))


@dataclass(frozen=True, eq=False)
class Take:
    """A recording: float32 mono audio at its sample rate. A take recorded after a count-in knows the
    beat it was played to: `click_bpm`, and where the beat after the count-in falls (`click_start_seconds`,
    0 for the take's first sample; negative once the take is trimmed from later on)."""

    audio: np.ndarray
    sample_rate: int
    click_bpm: float | None = None
    click_start_seconds: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def trimmed(self, start: float, end: float | None = None) -> Take:
        """The part from `start` to `end` seconds (None: to the end). Raises ValueError for a bad range."""
        end = self.duration if end is None else end
        if not (np.isfinite(start) and np.isfinite(end)) or not 0 <= start < end <= self.duration + 1e-9:
            raise ValueError(
                f"a trim needs 0 <= start < end <= {self.duration:.3f} s (the take's length), "
                f"got {start!r} to {end!r}"
            )
        a, b = round(start * self.sample_rate), round(end * self.sample_rate)
        if b <= a:
            raise ValueError(f"the trim {start!r} to {end!r} s is shorter than one sample")
        click_start = self.click_start_seconds - a / self.sample_rate  # the beat stays where it was played
        return Take(self.audio[a:b].copy(), self.sample_rate, self.click_bpm, click_start)

    def source(self) -> AudioSource:
        """The take as a finished AudioSource, for the Player."""
        return AudioSource(self.sample_rate, self.audio)

    def save_wav(self, path: str | Path) -> Path:
        """Write the take as a 32-bit float WAV at `path`, all or nothing. Raises RecordingError."""
        import soundfile

        from cocompose.export.atomic import check_folder, commit, discard, make_durable, temporary_beside
        from cocompose.export.errors import ExportError

        target = Path(path)
        if len(self.audio) == 0:
            raise RecordingError("the take is empty: there is nothing to save")
        temporary = None
        try:
            check_folder(target)
            temporary = temporary_beside(target)
            soundfile.write(temporary, self.audio, self.sample_rate, subtype="FLOAT", format="WAV")
            make_durable(temporary)
            commit(temporary, target)
            temporary = None
        except ExportError as exc:
            raise RecordingError(f"cannot save the take as {str(target)!r}: {exc}") from exc
        except (OSError, RuntimeError) as exc:  # soundfile reports write failures as RuntimeError
            raise RecordingError(f"cannot save the take as {str(target)!r}: {exc}") from exc
        finally:
            discard(temporary)
        return target


class RecorderState(Enum):
    UNAVAILABLE = "unavailable"  # no input device: the message says why
    IDLE = "idle"  # not open, or open and metering
    COUNTING_IN = "counting in"
    RECORDING = "recording"
    FAILED = "failed"  # the device failed; stop() still returns what was recorded


@dataclass(frozen=True)
class RecorderStatus:
    state: RecorderState
    message: str
    seconds: float  # recorded so far in this take
    count_in_left: float  # seconds of count-in still to go
    device: str | None
    sample_rate: int | None


Listener = Callable[[RecorderStatus], None]


class Recorder:
    """Records mono takes from one input device.

    Wiring (the record dialog does this): `Recorder(device)`, `open()` when the dialog shows (the meter
    starts moving: poll `take_level()` from a GUI timer), `start(CountIn(...))`, `stop()` -> Take,
    `close()` when the dialog closes. `add_listener()` hears state changes on the monitor thread.
    """

    def __init__(self, device: int | str | None = None) -> None:
        self._lock = threading.Lock()
        self._control = threading.RLock()  # open/close/fail between the caller and the monitor
        self._listeners: list[Listener] = []
        self._choice: DeviceChoice | None = None
        self._stream: Any = None
        self._running = False
        self._closed = False
        self._state = RecorderState.IDLE
        self._message = ""
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._count_in_left = 0  # frames
        self._click_bpm: float | None = None  # the count-in's tempo, for the take
        self._peak = 0.0
        self._square_sum = 0.0
        self._square_count = 0
        self._last_callback = 0.0
        self._pending_failure: str | None = None
        self._broken = False  # the callback failed (our error, the device is fine); the monitor acts on it
        self._wake = threading.Event()
        try:
            self._choice = resolve_device(device, "input")
        except StreamUnavailable as exc:
            self._state = RecorderState.UNAVAILABLE
            self._message = f"cannot record: {exc}"
        self._last_told = self._signature()
        self._monitor = threading.Thread(target=self._watch, name="cocompose-recorder", daemon=True)
        self._monitor.start()

    @property
    def sample_rate(self) -> int | None:
        return self._choice.sample_rate if self._choice else None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def status(self) -> RecorderStatus:
        rate = self.sample_rate
        with self._lock:
            return RecorderStatus(
                state=self._state,
                message=self._message,
                seconds=self._frames / rate if rate else 0.0,
                count_in_left=self._count_in_left / rate if rate else 0.0,
                device=self._choice.name if self._choice else None,
                sample_rate=rate,
            )

    def take_level(self) -> Level:
        """Peak and RMS since the last call (for a meter polled by a timer)."""
        with self._lock:
            peak, squares, count = self._peak, self._square_sum, self._square_count
            self._peak, self._square_sum, self._square_count = 0.0, 0.0, 0
        return Level(peak, float(np.sqrt(squares / count)) if count else 0.0)

    def open(self) -> RecorderStatus:
        """Open and start the input stream (idempotent): the meter runs, nothing is kept yet."""
        with self._control:
            if self._stream is not None or self._choice is None or self._closed:
                return self.status()
            try:
                stream = open_stream("input", self._choice, 1, self._callback, self._stream_finished)
                self._last_callback = time.monotonic()
                self._running = True
                stream.start()
            except StreamUnavailable as exc:
                self._running = False
                self._set_failed(f"cannot record: {exc}")
                return self.status()
            except Exception as exc:
                self._running = False
                if not port_audio_error(exc):
                    raise
                release(stream, wait_s=0.0)
                self._set_failed(f"cannot record: the device {self._choice.name!r} failed to start: {exc}")
                return self.status()
            self._stream = stream
            with self._lock:
                if self._state is RecorderState.FAILED:
                    self._state, self._message = RecorderState.IDLE, ""
        self._wake.set()
        return self.status()

    def start(self, count_in: CountIn | None = None) -> RecorderStatus:
        """Begin a new take after `count_in`, counted in the input's own frames (opens the stream)."""
        if self._state is RecorderState.UNAVAILABLE:
            return self.status()
        self.open()
        if self._stream is None:
            return self.status()
        rate = self._choice.sample_rate
        with self._lock:
            self._blocks, self._frames = [], 0
            self._count_in_left = round(count_in.seconds * rate) if count_in else 0
            self._click_bpm = count_in.bpm if count_in and count_in.beats else None
            self._state = RecorderState.COUNTING_IN if self._count_in_left else RecorderState.RECORDING
            self._message = ""
        self._wake.set()
        return self.status()

    def stop(self) -> Take | None:
        """End the take and return it (None when nothing was recorded). The stream keeps metering."""
        with self._lock:
            blocks, self._blocks = self._blocks, []
            self._frames = 0
            self._count_in_left = 0
            if self._state in (RecorderState.COUNTING_IN, RecorderState.RECORDING):
                self._state = RecorderState.IDLE
        self._wake.set()
        if not blocks or self._choice is None:
            return None
        return Take(np.concatenate(blocks), self._choice.sample_rate, self._click_bpm)

    def close(self) -> None:
        """Release the device. What was not stopped is dropped: call stop() first to keep it."""
        with self._control:
            if self._closed:
                return
            self._closed = True
            stream, self._stream = self._stream, None
            self._running = False
        self._wake.set()
        if stream is not None and not release(stream):
            _log.warning("the input device %r did not let go of its stream; left behind", self._choice.name)
        self._monitor.join(timeout=1.0)

    # --- the audio thread ----------------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        try:
            self._keep(indata[:, 0], frames)
        except Exception as exc:
            # Never into PortAudio, and no CallbackAbort either: a stream aborted from its own callback
            # cannot be closed by PortAudio's JACK host, and its ports then block every later stream. The
            # monitor closes the stream from its own thread instead.
            with self._lock:
                if self._pending_failure is None and self._running:
                    self._broken = True
                    self._pending_failure = f"recording stopped: {type(exc).__name__}: {exc}"
            self._wake.set()

    def _keep(self, block: np.ndarray, frames: int) -> None:
        self._last_callback = time.monotonic()
        if self._broken:
            return  # a failure is being reported; the monitor is closing the stream
        peak = float(np.max(np.abs(block))) if frames else 0.0
        squares = float(np.dot(block, block))
        rate = self._choice.sample_rate
        with self._lock:
            self._peak = max(self._peak, peak)
            self._square_sum += squares
            self._square_count += frames
            if self._state is RecorderState.COUNTING_IN:
                skip = min(self._count_in_left, frames)
                self._count_in_left -= skip
                if self._count_in_left:
                    return
                self._state = RecorderState.RECORDING
                self._wake.set()
                block = block[skip:]
            if self._state is RecorderState.RECORDING and len(block):
                self._blocks.append(block.copy())
                self._frames += len(block)
                if self._frames >= MAX_TAKE_SECONDS * rate:
                    self._state = RecorderState.IDLE
                    self._message = f"the take reached {MAX_TAKE_SECONDS / 60:.0f} minutes and stopped"
                    self._wake.set()

    def _stream_finished(self) -> None:
        if not self._running:
            return
        self._running = False
        self._pending_failure = f"the input device {self._choice.name!r} stopped (was it disconnected?)"
        self._wake.set()

    # --- the monitor thread --------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed:
            self._wake.wait(_MONITOR_PERIOD)
            self._wake.clear()
            failure, self._pending_failure = self._pending_failure, None
            if failure is None and self._running and time.monotonic() - self._last_callback > STALL_SECONDS:
                failure = f"the input device {self._choice.name!r} stopped responding (was it disconnected?)"
            if failure is not None:
                with self._control:
                    stream, self._stream = self._stream, None
                    self._running = False
                    ours, self._broken = self._broken, False
                if stream is not None:
                    if ours:  # our own error, not the device's: close it properly, now
                        release(stream)
                    else:
                        release(stream, wait_s=0.0)
                self._set_failed(failure)
            self._tell_listeners()
        self._tell_listeners()

    def _set_failed(self, message: str) -> None:
        with self._lock:
            if self._state is not RecorderState.UNAVAILABLE:
                self._state, self._message = RecorderState.FAILED, message
        self._wake.set()

    def _signature(self) -> tuple[RecorderState, str]:
        return (self._state, self._message)

    def _tell_listeners(self) -> None:
        signature = self._signature()
        if signature == self._last_told:
            return
        self._last_told = signature
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # one listener's bug must not silence the next report
                _log.exception("a recorder listener failed")
