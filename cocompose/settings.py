"""The musician's settings: compute device and precision, CPU threads, audio devices, the defaults of a new
generation request and the export loudness target.

One JSON file, `settings.json` in the user's config folder (cocompose.app_state.config_dir()), written
whole and atomically. Reading never fails: a missing file gives the defaults, a damaged one gives the
defaults plus a warning (and is kept beside as settings.json.corrupt when the settings are next saved),
and a value that makes no sense falls back to its default with a warning naming the key. Keys this
version does not know (written by a newer Cocompose, or by hand) are kept and written back unchanged.

`device_choices()` and `resolve_compute()` ask torch what the machine has; they import it on first call,
so call them off the GUI thread the first time (the settings dialog does).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cocompose.app_state import config_dir
from cocompose.service.requests import MAX_BRANCHES, MAX_SECONDS

SETTINGS_FILE = "settings.json"
FORMAT = "cocompose-settings"
VERSION = 1
PRECISIONS = ("float32", "bfloat16", "float16")
MAX_THREADS = 1024
LUFS_RANGE = (-40.0, -5.0)  # as the export dialog offers
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class SettingsError(OSError):
    """The settings could not be saved; the message names the file and why."""


@dataclass(frozen=True)
class Settings:
    device: str = "auto"  # "auto" (a GPU when there is one), "cpu", "cuda", "cuda:N", "mps"
    precision: str = "float32"  # of the priors' compute; one of PRECISIONS
    cpu_threads: int = 0  # torch's intra-op threads; 0 leaves torch's own choice
    output_device: str | None = None  # a sound device name; None: the system's default
    input_device: str | None = None
    branches: int = 3  # defaults of a new generation request
    seconds: float = 4.0
    temperature: float = 0.98
    loudness_lufs: float | None = -14.0  # export loudness target; None leaves the level alone
    extra: dict[str, Any] = field(default_factory=dict, compare=True)  # keys this version does not know

    def to_json(self) -> str:
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data = {**self.extra, "format": FORMAT, "version": VERSION, **known}
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    warnings: tuple[str, ...] = ()  # what was wrong with the file, one line each
    path: Path | None = None


def settings_path(folder: Path | None = None) -> Path:
    return (Path(folder) if folder is not None else config_dir()) / SETTINGS_FILE


def _number(value: Any, integer: bool) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if integer:
        return value if isinstance(value, int) else None
    return float(value) if math.isfinite(value) else None


def _check(name: str, value: Any) -> tuple[bool, Any]:
    """(valid, the value as stored) for one known key."""
    if name == "device":
        return isinstance(value, str) and bool(DEVICE_PATTERN.match(value)), value
    if name == "precision":
        return value in PRECISIONS, value
    if name in ("output_device", "input_device"):
        return value is None or (isinstance(value, str) and bool(value.strip())), value
    if name == "cpu_threads":
        n = _number(value, integer=True)
        return n is not None and 0 <= n <= MAX_THREADS, n
    if name == "branches":
        n = _number(value, integer=True)
        return n is not None and 1 <= n <= MAX_BRANCHES, n
    if name == "seconds":
        x = _number(value, integer=False)
        return x is not None and 0 < x <= MAX_SECONDS, x
    if name == "temperature":
        x = _number(value, integer=False)
        return x is not None and 0 < x <= 10, x
    if name == "loudness_lufs":
        x = None if value is None else _number(value, integer=False)
        return value is None or (x is not None and LUFS_RANGE[0] <= x <= LUFS_RANGE[1]), x
    raise AssertionError(name)


def settings_from_dict(data: dict[str, Any]) -> tuple[Settings, tuple[str, ...]]:
    """Settings from a decoded file: bad values give their default (and a warning), unknown keys are kept."""
    defaults = Settings()
    values: dict[str, Any] = {}
    warnings = []
    known = {f.name for f in fields(Settings) if f.name != "extra"}
    for name in known & data.keys():
        ok, value = _check(name, data[name])
        if ok:
            values[name] = value
        else:
            warnings.append(
                f"setting {name!r} has the unusable value {data[name]!r}; using {getattr(defaults, name)!r}"
            )
    extra = {k: v for k, v in data.items() if k not in known and k not in ("format", "version")}
    return replace(defaults, **values, extra=extra), tuple(sorted(warnings))


def load_settings(folder: Path | None = None) -> LoadedSettings:
    """The saved settings; never raises (see the module)."""
    path = settings_path(folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadedSettings(Settings(), (), path)
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedSettings(Settings(), (f"cannot read {path} ({exc}); using the default settings",), path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        data, why = None, f"is not valid JSON ({exc})"
    else:
        why = "does not hold Cocompose settings"
    if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
        return LoadedSettings(Settings(), (f"{path} {why}; using the default settings",), path)
    settings, warnings = settings_from_dict(data)
    return LoadedSettings(settings, warnings, path)


def _readable(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format", FORMAT) == FORMAT


def save_settings(settings: Settings, folder: Path | None = None) -> Path:
    """Write the settings atomically (a crash mid-write leaves the old file whole). A file that could not be
    read is first kept as settings.json.corrupt, so nothing written by hand is lost. SettingsError if the
    file cannot be written."""
    for name in (f.name for f in fields(Settings) if f.name != "extra"):
        ok, _ = _check(name, getattr(settings, name))
        if not ok:
            raise ValueError(f"setting {name!r} cannot be {getattr(settings, name)!r}")
    target = settings_path(folder)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _readable(target):
            os.replace(target, target.with_name(SETTINGS_FILE + ".corrupt"))
        fd, tmp = tempfile.mkstemp(prefix=f".{SETTINGS_FILE}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(settings.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise SettingsError(f"cannot save the settings to {target}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target


# --- what the machine can compute on -------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChoice:
    value: str  # what Settings.device stores
    label: str  # what the musician reads


def device_choices() -> tuple[DeviceChoice, ...]:
    """auto and cpu always; each CUDA GPU and Apple's MPS when torch can use them. Imports torch."""
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append(DeviceChoice(f"cuda:{index}", f"GPU {index}: {props.name} "
                                     f"({props.total_memory / 2**30:.0f} GiB)"))  # fmt: skip
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        gpus.append(DeviceChoice("mps", "Apple GPU (MPS)"))
    auto = f"Automatic ({gpus[0].label})" if gpus else "Automatic (the CPU: no GPU found)"
    return (DeviceChoice("auto", auto), DeviceChoice("cpu", "CPU"), *gpus)


@dataclass(frozen=True)
class Compute:
    """What the settings come to on this machine. note: why it differs from what was asked ("" if not)."""

    device: str
    precision: str
    note: str = ""


def resolve_compute(settings: Settings) -> Compute:
    """The device and precision to load models with: 'auto' becomes the first GPU (else the CPU), a GPU
    that is not there becomes the CPU, and float16 on the CPU becomes float32 (CPUs lack fast float16
    kernels; bfloat16 works). Imports torch."""
    available = {choice.value for choice in device_choices()}
    notes = []
    device = settings.device
    if device == "auto":
        gpus = [v for v in available if v not in ("auto", "cpu")]
        device = sorted(gpus)[0] if gpus else "cpu"
    elif device == "cuda":
        device = "cuda:0"
    if device not in available:
        notes.append(f"{settings.device} is not available on this machine; using the CPU")
        device = "cpu"
    precision = settings.precision
    if device == "cpu" and precision == "float16":
        notes.append("float16 is slow on the CPU; using float32 (bfloat16 works on the CPU)")
        precision = "float32"
    return Compute(device, precision, "; ".join(notes))
