"""Sound-card access for the app: list devices, play, record, and say plainly when there is no audio.

Built on sounddevice, which loads the PortAudio shared library the moment it is imported and raises
OSError when that library is missing. So it is imported here only on first use: the app, and everything
else that imports this module, keeps working without sound and can show the user why.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import numpy as np

# PortAudio initialises in well under a second; a stalled JACK server keeps it waiting for good.
INIT_WAIT_SECONDS = 10.0


class AudioUnavailable(RuntimeError):
    """No audio: PortAudio is missing, there is no device, or the device failed. The message says which."""


_stalled: AudioUnavailable | None = None  # PortAudio's first initialisation never finished


@dataclass(frozen=True)
class AudioStatus:
    """What the app can tell the user about its sound: usable or not, and on which device."""

    available: bool
    reason: str  # why audio is unavailable; "" when it is available
    default_output: str | None = None
    default_input: str | None = None
    host_api: str | None = None
    output_channels: int = 0
    input_channels: int = 0
    sample_rate: float | None = None  # the default output's preferred rate (JACK accepts only this one)

    def summary(self) -> str:
        """One line for a status bar, e.g. "Audio: system (JACK Audio Connection Kit, 2 in / 2 out)"."""
        if not self.available:
            return f"Audio unavailable: {self.reason}"
        return (
            f"Audio: {self.default_output} "
            f"({self.host_api}, {self.input_channels} in / {self.output_channels} out)"
        )


@dataclass(frozen=True)
class AudioDevice:
    index: int  # PortAudio's device number; pass it as `device=` to play/record
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float


def _sounddevice() -> ModuleType:
    """Import sounddevice on first use, turning a missing PortAudio into AudioUnavailable.

    The first import initialises PortAudio, whose JACK host blocks there for as long as a JACK server is
    stalled; so it runs on a daemon thread waited on at most INIT_WAIT_SECONDS. Past that, audio is
    unavailable for the rest of the session (the stuck import holds the module's lock for good) and the
    app goes on without sound instead of never opening.
    """
    global _stalled
    if _stalled is not None:
        raise _stalled
    if "sounddevice" in sys.modules:
        return _import_sounddevice()
    outcome: list[ModuleType | BaseException] = []

    def load() -> None:
        try:
            outcome.append(_import_sounddevice())
        except BaseException as exc:  # raised again on the caller's thread, where it belongs
            outcome.append(exc)

    loader = threading.Thread(target=load, name="cocompose-portaudio-init", daemon=True)
    loader.start()
    loader.join(INIT_WAIT_SECONDS)
    if loader.is_alive():
        _stalled = AudioUnavailable(
            f"the sound system did not answer within {INIT_WAIT_SECONDS:g} s (a JACK server that hangs?); "
            "restart it, then Cocompose"
        )
        raise _stalled
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there but the PortAudio library is not
        raise AudioUnavailable(f"{exc} (install the libportaudio2 system package)") from exc
    except ImportError as exc:
        raise AudioUnavailable("the sounddevice Python package is not installed") from exc
    return sounddevice


def list_devices() -> list[AudioDevice]:
    sd = _sounddevice()
    host_apis = sd.query_hostapis()
    return [
        AudioDevice(
            index=info["index"],
            name=info["name"],
            host_api=host_apis[info["hostapi"]]["name"],
            max_input_channels=info["max_input_channels"],
            max_output_channels=info["max_output_channels"],
            default_sample_rate=info["default_samplerate"],
        )
        for info in sd.query_devices()
    ]


def audio_status() -> AudioStatus:
    """Probe PortAudio's default devices. Never raises: a missing or broken setup is reported, not thrown."""
    try:
        devices = list_devices()
        default_input, default_output = _sounddevice().default.device
    except AudioUnavailable as exc:
        return AudioStatus(available=False, reason=str(exc))
    by_index = {device.index: device for device in devices}
    output = by_index.get(default_output)
    if output is None:
        reason = "no sound output device found" if not devices else "no default sound output device"
        return AudioStatus(available=False, reason=reason)
    source = by_index.get(default_input)
    return AudioStatus(
        available=True,
        reason="",
        default_output=output.name,
        default_input=source.name if source else None,
        host_api=output.host_api,
        output_channels=output.max_output_channels,
        input_channels=source.max_input_channels if source else 0,
        sample_rate=output.default_sample_rate,
    )


def play(samples: np.ndarray, sr: int, device: int | str | None = None, blocking: bool = True) -> None:
    """Play float audio shaped (frames,) or (frames, channels). With blocking=False it returns at once."""
    audio = _checked_audio(samples)
    _checked_sample_rate(sr)
    sd = _sounddevice()
    with _device_errors(sd):
        sd.play(audio, sr, device=device, blocking=blocking)


def stop() -> None:
    """Stop whatever play() started without blocking."""
    sd = _sounddevice()
    with _device_errors(sd):
        sd.stop()


def record(seconds: float, sr: int, channels: int = 1, device: int | str | None = None) -> np.ndarray:
    """Record for `seconds` and return float32 audio shaped (frames, channels)."""
    _checked_sample_rate(sr)
    _checked_channels(channels)
    frames = round(seconds * sr) if np.isfinite(seconds) else 0
    if frames <= 0:
        raise ValueError(f"record() needs a duration of at least one sample, got {seconds!r} s at {sr} Hz")
    sd = _sounddevice()
    with _device_errors(sd):
        return sd.rec(frames, sr, channels, dtype="float32", device=device, blocking=True)


def playrec(samples: np.ndarray, sr: int, channels: int = 1, device: int | str | None = None) -> np.ndarray:
    """Play `samples` and record at the same time on one duplex stream (so both share one clock).

    Returns float32 audio shaped (frames, channels), as many frames as were played.
    """
    audio = _checked_audio(samples)
    _checked_sample_rate(sr)
    _checked_channels(channels)
    sd = _sounddevice()
    with _device_errors(sd):
        return sd.playrec(audio, sr, channels=channels, dtype="float32", device=device, blocking=True)


@contextmanager
def _device_errors(sd: ModuleType) -> Iterator[None]:
    """Re-raise PortAudio's errors, and sounddevice's "no such device" ValueError, as AudioUnavailable."""
    try:
        yield
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioUnavailable(f"sound device failed: {exc}") from exc


def _checked_audio(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise ValueError(f"audio must be shaped (frames,) or (frames, channels), got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be floating point in [-1, 1], got dtype {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def _checked_sample_rate(sr: int) -> None:
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer in Hz, got {sr!r}")


def _checked_channels(channels: int) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int | np.integer) or channels <= 0:
        raise ValueError(f"channel count must be a positive integer, got {channels!r}")
