"""Playback: one output stream, a source that may still be growing, and A/B switching without a gap.

`AudioSource` is a mono float32 buffer at a sample rate that another thread may keep appending to (a
branch still being sampled). `Player` owns one sounddevice OutputStream running at the device's own
rate; every source is converted to that rate (soxr, streamed as it grows), so a playhead position is one
frame index shared by all sources, and `switch()` swaps the source under it between two callbacks: no
gap, no stream restart.

Threads. The audio callback runs on PortAudio's thread; callers run on theirs (the GUI's). They share a
few fields under one lock held only for a copy of one block. Listeners are called on the player's own
monitor thread, never on the audio thread and never while the lock is held. Device trouble becomes a
state and a message, never an exception in the caller.

Without a device (no PortAudio, no sound card, an unknown device name) the player is UNAVAILABLE: every
call is a no-op and the status says "cannot play: <why>", so the app composes and exports regardless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import soxr

from cocompose.audio_stream import (
    DeviceChoice,
    StreamUnavailable,
    open_stream,
    port_audio_error,
    release,
    resolve_device,
)

_log = logging.getLogger(__name__)

STALL_SECONDS = 2.0  # a running stream whose callback has not run for this long is reported as stalled
# Pause and stop keep the stream running (silent): resuming is instant, and PortAudio's JACK host would
# otherwise drop the user's port connections on every stop. After this long without playing it stops.
IDLE_RELEASE_SECONDS = 60.0
MIN_LOOP_SECONDS = 0.01
OUTPUT_CHANNELS = 2  # mono sources go out on both sides of a stereo device
_MONITOR_PERIOD = 0.05


class AudioSource:
    """A mono float32 buffer at `sample_rate` that can grow while it plays.

    Appends may come from any thread. Readers take `snapshot()`: the array and the number of frames
    written, which stay valid for ever (a growth copies into a new array; written frames never change).
    `finish()` marks the source complete: playing past its end then stops instead of waiting.
    """

    def __init__(self, sample_rate: int, audio: np.ndarray | None = None, *, complete: bool = True) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
            raise ValueError(f"sample rate must be a positive integer in Hz, got {sample_rate!r}")
        self.sample_rate = int(sample_rate)
        self._write_lock = threading.Lock()
        self._listeners: list[Callable[[np.ndarray, bool], None]] = []
        self._converted: dict[int, AudioSource] = {}
        # (array, frames written, complete): replaced in one assignment so readers never see a mixture.
        self._view: tuple[np.ndarray, int, bool] = (np.zeros(0, np.float32), 0, False)
        if audio is not None:
            self.append(audio)
        if complete:
            self.finish()

    @property
    def frames(self) -> int:
        return self._view[1]

    @property
    def duration(self) -> float:
        return self._view[1] / self.sample_rate

    @property
    def complete(self) -> bool:
        return self._view[2]

    def snapshot(self) -> tuple[np.ndarray, int, bool]:
        """(array, frames, complete): array[:frames] is the audio so far and never changes."""
        return self._view

    def audio(self) -> np.ndarray:
        """A copy of everything written so far."""
        data, frames, _ = self._view
        return data[:frames].copy()

    def append(self, samples: np.ndarray) -> None:
        """Add mono audio at the end. Raises ValueError for bad audio or after finish()."""
        chunk = _checked_mono(samples)
        with self._write_lock:
            data, frames, complete = self._view
            if complete:
                raise ValueError("cannot append to a source that is finished")
            need = frames + len(chunk)
            if need > len(data):
                grown = np.empty(max(need, 2 * len(data), 4096), np.float32)
                grown[:frames] = data[:frames]
                data = grown
            data[frames:need] = chunk
            self._view = (data, need, False)
            for listener in self._listeners:
                listener(chunk, False)

    def finish(self) -> None:
        """Mark the source complete (idempotent)."""
        with self._write_lock:
            data, frames, complete = self._view
            if complete:
                return
            self._view = (data, frames, True)
            for listener in self._listeners:
                listener(np.zeros(0, np.float32), True)

    def at_rate(self, sample_rate: int) -> AudioSource:
        """This source at `sample_rate`: itself, or a converted copy that keeps growing as this one grows."""
        if sample_rate == self.sample_rate:
            return self
        with self._write_lock:
            converted = self._converted.get(sample_rate)
            if converted is None:
                converted = _resampled_follower(self, sample_rate)
                self._converted[sample_rate] = converted
            return converted


def _resampled_follower(source: AudioSource, rate: int) -> AudioSource:
    """A source at `rate` fed by soxr from `source`; Called with source's write lock held: no append races."""
    target = AudioSource(rate, complete=False)
    stream = soxr.ResampleStream(source.sample_rate, rate, 1, dtype="float32", quality="HQ")

    def feed(chunk: np.ndarray, last: bool) -> None:
        out = stream.resample_chunk(chunk, last=last)
        if len(out):
            target.append(out)
        if last:
            target.finish()

    data, frames, complete = source.snapshot()
    feed(data[:frames], complete)
    source._listeners.append(feed)
    return target


def _checked_mono(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise ValueError(f"a source takes mono audio shaped (frames,), got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be floating point in [-1, 1], got dtype {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


class PlayerState(Enum):
    UNAVAILABLE = "unavailable"  # no device: nothing can play; the message says why
    STOPPED = "stopped"
    PLAYING = "playing"
    PAUSED = "paused"
    FAILED = "failed"  # the device failed while in use; play() tries to open it again


@dataclass(frozen=True)
class PlayerStatus:
    state: PlayerState
    message: str  # what happened, for a status bar; "" when all is well
    position: float  # seconds from the start of the source
    duration: float  # seconds of the source so far (it may still grow)
    waiting: bool  # playing past the end of a source that is still growing: silence until more arrives
    loop: tuple[float, float] | None
    device: str | None  # the output device's name, once known
    sample_rate: int | None  # the stream's rate

    @property
    def playing(self) -> bool:
        return self.state is PlayerState.PLAYING


Listener = Callable[[PlayerStatus], None]


class Player:
    """Plays one `AudioSource` at a time through one output stream.

    Wiring: create one Player for the app (`Player(device)`), call `open()` early so the first Space is
    instant (opening a PortAudio stream takes a few hundred ms; starting an open one takes a few), give it
    the current path with `load()`, and A/B siblings with `switch()`. Read `status()` from a GUI timer for
    the playhead; `add_listener()` hears state and message changes (on the monitor thread: re-post to the
    GUI thread). `close()` at exit.
    """

    def __init__(self, device: int | str | None = None) -> None:
        self._device_request = device
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._choice: DeviceChoice | None = None
        self._stream: Any = None
        self._closed = False
        # Shared with the audio callback (under self._lock):
        self._source: AudioSource | None = None  # what the caller gave
        self._track: AudioSource | None = None  # the same at the stream's rate
        self._pos = 0  # frames at the stream's rate
        self._loop: tuple[int, int] | None = None
        self._state = PlayerState.STOPPED
        self._message = ""
        self._waiting = False
        self._stream_running = False  # the stream was started by us and not yet stopped by us
        self._last_callback = 0.0
        self._idle_since = 0.0
        self._pending_failure: str | None = None  # set on PortAudio's thread, acted on by the monitor
        # Serialises starting, stopping and dropping the stream between the caller and the monitor. The audio
        # callback never takes it (PortAudio calls back into us while abort() runs).
        self._control = threading.RLock()
        self._wake = threading.Event()
        try:
            self._choice = resolve_device(device, "output")
        except StreamUnavailable as exc:
            self._state = PlayerState.UNAVAILABLE
            self._message = f"cannot play: {exc}"
        self._monitor = threading.Thread(target=self._watch, name="cocompose-player", daemon=True)
        self._last_told = self._signature()
        self._monitor.start()

    # --- the caller's side -----------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int | None:
        return self._choice.sample_rate if self._choice else None

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(status)` when the state, message or waiting flag changes (on the monitor thread)."""
        self._listeners.append(listener)

    def status(self) -> PlayerStatus:
        with self._lock:
            rate = self._choice.sample_rate if self._choice else None
            track = self._track
            return PlayerStatus(
                state=self._state,
                message=self._message,
                position=self._pos / rate if rate else 0.0,
                duration=track.duration if track else 0.0,
                waiting=self._waiting,
                loop=(self._loop[0] / rate, self._loop[1] / rate) if self._loop and rate else None,
                device=self._choice.name if self._choice else None,
                sample_rate=rate,
            )

    @property
    def position(self) -> float:
        return self.status().position

    def open(self) -> PlayerStatus:
        """Open the output stream now (idempotent), so that play() only has to start it."""
        self._ensure_stream()
        return self.status()

    def load(self, source: AudioSource, start: float = 0.0) -> PlayerStatus:
        """Play `source` from `start` seconds (keeps playing if it was); the loop is cleared."""
        with self._lock:
            self._source = source
            self._track = source.at_rate(self._choice.sample_rate) if self._choice else None
            self._loop = None
            self._pos = self._clamped(self._seconds_to_frames(start))
        self._wake.set()
        return self.status()

    def switch(self, source: AudioSource) -> PlayerStatus:
        """Swap in `source` at the same playhead position (A/B); the sound does not stop."""
        track = source.at_rate(self._choice.sample_rate) if self._choice else None
        with self._lock:
            self._source = source
            self._track = track
        self._wake.set()
        return self.status()

    @property
    def source(self) -> AudioSource | None:
        return self._source

    def play(self) -> PlayerStatus:
        """Start (or resume) playing. From the end of a finished source it starts again at the beginning."""
        if self._state is PlayerState.UNAVAILABLE:
            return self.status()
        if not self._ensure_stream():
            return self.status()
        with self._control:
            with self._lock:
                if self._track is None:
                    self._message = "nothing to play yet"
                else:
                    _, frames, complete = self._track.snapshot()
                    if complete and self._pos >= frames:
                        self._pos = self._loop[0] if self._loop else 0
                    self._state = PlayerState.PLAYING
                    self._message = ""
            if self._state is PlayerState.PLAYING:
                self._start_stream()
        self._wake.set()
        return self.status()

    def pause(self) -> PlayerStatus:
        """Stop the sound and keep the position."""
        with self._lock:
            if self._state is PlayerState.PLAYING:
                self._state = PlayerState.PAUSED
                self._waiting = False
                self._idle_since = time.monotonic()
        self._wake.set()
        return self.status()

    def toggle(self) -> PlayerStatus:
        """Space: play if not playing, else pause."""
        return self.pause() if self._state is PlayerState.PLAYING else self.play()

    def stop(self) -> PlayerStatus:
        """Stop the sound and go back to the start (of the loop, when there is one)."""
        with self._lock:
            if self._state in (PlayerState.PLAYING, PlayerState.PAUSED):
                self._state = PlayerState.STOPPED
                self._idle_since = time.monotonic()
            self._waiting = False
            self._pos = self._loop[0] if self._loop else 0
        self._wake.set()
        return self.status()

    def seek(self, seconds: float) -> PlayerStatus:
        """Move the playhead to `seconds`, clamped to what the source has so far."""
        with self._lock:
            self._pos = self._clamped(self._seconds_to_frames(seconds))
        return self.status()

    def seek_by(self, seconds: float) -> PlayerStatus:
        with self._lock:
            self._pos = self._clamped(self._pos + self._seconds_to_frames(seconds))
        return self.status()

    def seek_end(self) -> PlayerStatus:
        with self._lock:
            self._pos = self._clamped(1 << 62)
        return self.status()

    def set_loop(self, start: float, end: float) -> PlayerStatus:
        """Repeat [start, end) seconds. Raises ValueError for a region that is not a region."""
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end - start < MIN_LOOP_SECONDS:
            raise ValueError(
                f"a loop needs 0 <= start < end with at least {MIN_LOOP_SECONDS * 1000:.0f} ms between "
                f"them, got {start!r} to {end!r} s"
            )
        with self._lock:
            a, b = self._seconds_to_frames(start), self._seconds_to_frames(end)
            self._loop = (a, max(b, a + 1))
            if not a <= self._pos < b:
                self._pos = a
        return self.status()

    def clear_loop(self) -> PlayerStatus:
        with self._lock:
            self._loop = None
        return self.status()

    def close(self) -> None:
        """Let go of the device; the player becomes UNAVAILABLE. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._state = PlayerState.UNAVAILABLE
            self._message = "cannot play: the player was closed"
            stream, self._stream = self._stream, None
            self._stream_running = False
        self._wake.set()
        if stream is not None and not release(stream):
            _log.warning("the sound device %r did not let go of its stream; left behind", self._device_name())
        self._monitor.join(timeout=1.0)

    # --- stream management (caller's thread and monitor thread) --------------------------------------

    def _ensure_stream(self) -> bool:
        with self._control:
            return self._ensure_stream_locked()

    def _ensure_stream_locked(self) -> bool:
        if self._stream is not None:
            return True
        if self._choice is None or self._closed:
            return False
        try:
            stream = open_stream(
                "output",
                self._choice,
                min(OUTPUT_CHANNELS, self._choice.channels),
                self._callback,
                self._stream_finished,
            )
        except StreamUnavailable as exc:
            with self._lock:
                self._state = PlayerState.FAILED
                self._message = f"cannot play: {exc}"
            self._wake.set()
            return False
        with self._lock:
            self._stream = stream
            if self._state is PlayerState.FAILED:
                self._state = PlayerState.STOPPED
                self._message = ""
        return True

    def _start_stream(self) -> None:
        stream = self._stream
        if stream is None or self._stream_running:
            return
        try:
            self._last_callback = time.monotonic()
            self._stream_running = True
            stream.start()
        except Exception as exc:
            if not port_audio_error(exc):
                raise
            self._fail(f"the sound device {self._device_name()!r} failed to start: {exc}")

    def _stop_stream(self) -> None:
        stream = self._stream
        if stream is None or not self._stream_running:
            return
        self._stream_running = False
        try:
            stream.abort()  # abort, not stop: pause means silence now, not after the queued buffers
        except Exception as exc:
            if not port_audio_error(exc):
                raise
            self._fail(f"the sound device {self._device_name()!r} failed: {exc}")

    def _fail(self, message: str) -> None:
        """The device is unusable: drop the stream (without waiting on it) and say what happened."""
        with self._control, self._lock:
            stream, self._stream = self._stream, None
            self._stream_running = False
            self._waiting = False
            if self._state is not PlayerState.UNAVAILABLE:
                self._state = PlayerState.FAILED
                self._message = message
        if stream is not None:
            release(stream, wait_s=0.0)
        self._wake.set()

    def _device_name(self) -> str:
        return self._choice.name if self._choice else "?"

    def _stream_finished(self) -> None:
        # PortAudio's thread, when the stream becomes inactive. Expected after our own abort(); otherwise
        # the device went away (a JACK server that quit, a USB card pulled out) or the callback failed.
        if not self._stream_running:
            return
        self._stream_running = False
        self._pending_failure = f"the sound device {self._device_name()!r} stopped (was it disconnected?)"
        self._wake.set()

    # --- the audio thread ----------------------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        try:
            self._fill(outdata, frames)
        except Exception as exc:
            # A broken source, not a broken device: go silent and say what it was, but keep the stream.
            # Aborting it from here (CallbackAbort) leaves PortAudio's JACK host unable to close it, and
            # its ports, still registered, then stop every later stream of this process from opening.
            outdata.fill(0)
            with self._lock:
                self._state = PlayerState.FAILED
                self._message = f"playback stopped: {type(exc).__name__}: {exc}"
                self._waiting = False
                self._idle_since = time.monotonic()
            self._wake.set()

    def _fill(self, outdata: np.ndarray, frames: int) -> None:
        self._last_callback = time.monotonic()
        with self._lock:
            track, pos, loop = self._track, self._pos, self._loop
            if self._state is not PlayerState.PLAYING or track is None:
                outdata.fill(0)
                return
            data, length, complete = track.snapshot()
            out = outdata[:, 0]
            written = 0
            loop_end = None
            if loop is not None:
                if loop[1] <= length:
                    loop_end = loop[1]
                elif complete and length > loop[0]:
                    loop_end = length  # a loop drawn past the end of a finished source wraps at its end
            while written < frames:
                end = length
                if loop_end is not None:
                    if pos >= loop_end:
                        pos = loop[0]
                    end = loop_end
                take = min(frames - written, end - pos)
                if take <= 0:
                    break
                out[written : written + take] = data[pos : pos + take]
                pos += take
                written += take
            out[written:] = 0
            if outdata.shape[1] > 1:
                outdata[:, 1:] = outdata[:, :1]
            self._pos = pos
            starved = written < frames
            if starved and complete and loop_end is None:
                self._state = PlayerState.STOPPED
                self._idle_since = time.monotonic()
                self._waiting = False
                self._wake.set()
            elif starved != self._waiting:
                self._waiting = starved
                self._wake.set()

    # --- the monitor thread --------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed:
            self._wake.wait(_MONITOR_PERIOD)
            self._wake.clear()
            failure, self._pending_failure = self._pending_failure, None
            if failure is not None:
                self._fail(failure)
            elif self._stream_running and self._idle_for() > IDLE_RELEASE_SECONDS:
                with self._control:  # long silent: stop the stream to spare the CPU (it stays open)
                    if self._idle_for() > IDLE_RELEASE_SECONDS:
                        self._stop_stream()
            elif self._stream_running and time.monotonic() - self._last_callback > STALL_SECONDS:
                self._fail(
                    f"the sound device {self._device_name()!r} stopped responding (was it disconnected?)"
                )
            self._tell_listeners()
        self._tell_listeners()

    def _idle_for(self) -> float:
        if self._state is PlayerState.PLAYING:
            return 0.0
        return time.monotonic() - self._idle_since

    def _signature(self) -> tuple[PlayerState, str, bool]:
        return (self._state, self._message, self._waiting)

    def _tell_listeners(self) -> None:
        signature = self._signature()
        if signature == self._last_told:
            return
        self._last_told = signature
        status = self.status()
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # a listener's bug must not stop the player from reporting the next change
                _log.exception("a player listener failed")

    # --- helpers (lock held) -------------------------------------------------------------------------

    def _seconds_to_frames(self, seconds: float) -> int:
        if not np.isfinite(seconds):
            raise ValueError(f"a position must be a finite number of seconds, got {seconds!r}")
        rate = self._choice.sample_rate if self._choice else 1
        return round(seconds * rate)

    def _clamped(self, frame: int) -> int:
        frames = self._track.frames if self._track else 0
        return max(0, min(frame, frames))
