"""What the model manager lists: the embedded default model, the models installed under `models_home()`,
and the official Jukebox models that can be downloaded; and adding a model folder of one's own.

Everything here reads folders and small JSON files (bundle.json, each model's settings); nothing loads a
model. The official-model tables live in cocompose.download, which imports torch (the converter needs
it), so `scan` imports it only when called: the app calls `scan` and `add_model_folder` on a worker
thread (they touch the disk), and the GUI gets back plain `ModelEntry` values. Importing this module
itself costs nothing and never loads torch.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cocompose.models import DEFAULT_MODEL, DEFAULT_MODEL_DIR, models_home

MANIFEST_NAME = "bundle.json"
MODEL_FORMAT = "cocompose-model"
MANIFEST_FORMAT = "cocompose-bundle"
# JSON files in a model folder that are not model settings.
NOT_SETTINGS = {MANIFEST_NAME, "download.json"}
BUILD_DEFAULT_HINT = (
    "build it with `cocompose train-default --install` (trains on the synthetic corpus on this machine; "
    "see docs/TRAINING.md)"
)
COPY_CHUNK = 4 << 20


class CatalogError(ValueError):
    """A model folder cannot be added: the message names the folder and what is wrong."""


class AddCancelled(Exception):
    """Adding a folder was cancelled; the half-made copy was removed, the source is untouched."""


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model manager.

    kind: "default", "installed" or "official". state: "ready" (usable), "not built" (the default model
    before `train-default`), "incomplete" (problem says what is missing), "available" (an official model
    not downloaded yet), "partial" (an official model with some files downloaded or converted).
    """

    name: str
    kind: str
    folder: Path
    state: str
    problem: str = ""  # why the folder cannot be used as it is; "" when it can
    size_bytes: int | None = None  # on disk (files hard-linked twice in the folder count once)
    top_priors: tuple[str, ...] = ()
    sample_rate: int | None = None
    upsamplers: bool = False
    linked_to: Path | None = None  # an installed model that is a link to a folder elsewhere
    download_bytes: int | None = None  # official: what is still to fetch (at least; the weights alone)
    full_bytes: int | None = None  # official: all of its files
    partial_bytes: int = 0  # official: bytes already in .part files, resumed by the next download
    files: tuple[str, ...] = ()  # official: the model's files
    converted: tuple[str, ...] = ()  # official: those already converted in the model folder
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> bool:
        return self.state == "ready"


@dataclass(frozen=True)
class Catalog:
    default: ModelEntry
    installed: tuple[ModelEntry, ...]
    official: tuple[ModelEntry, ...]
    home: Path

    def entries(self) -> tuple[ModelEntry, ...]:
        return (self.default, *self.installed, *self.official)


# --- reading a folder ----------------------------------------------------------------------------------


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _model_settings(folder: Path) -> dict[str, dict]:
    """Stem -> settings of every model description in the folder (other JSON files are skipped)."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        if path.name in NOT_SETTINGS:
            continue
        data = _read_json(path)
        if data is not None and data.get("format") == MODEL_FORMAT and isinstance(data.get("config"), dict):
            found[path.stem] = data
    return found


def _is_top_prior(settings: dict) -> bool:
    config = settings["config"]
    return (
        settings.get("kind") == "prior"
        and config.get("conditioner") is None
        and config.get("level") == config.get("levels", 0) - 1
    )


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder`; a file hard-linked twice in it counts once (the official models
    share their VQ-VAE and upsamplers that way)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                info = os.stat(os.path.join(root, name), follow_symlinks=False)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def describe_folder(folder: Path, name: str | None = None, kind: str = "installed") -> ModelEntry:
    """What a model folder holds, from bundle.json (or the conventional file names, as engine.bundle reads
    them) and each model's settings file; `problem` names the first thing that keeps it from loading."""
    folder = Path(folder)
    name = name or folder.name
    linked = Path(os.readlink(folder)) if folder.is_symlink() else None
    if not folder.is_dir():
        what = "the folder it links to is gone" if linked is not None else "the folder does not exist"
        return ModelEntry(name, kind, folder, "incomplete", problem=f"{what} ({folder})", linked_to=linked)
    settings = _model_settings(folder)
    manifest = None
    if (folder / MANIFEST_NAME).exists():
        manifest = _read_json(folder / MANIFEST_NAME)
        if manifest is None or manifest.get("format") != MANIFEST_FORMAT:
            problem = f"{folder / MANIFEST_NAME} is not a readable Cocompose bundle manifest"
            size = folder_bytes(folder)
            return ModelEntry(name, kind, folder, "incomplete", problem, size, linked_to=linked)
    problems: list[str] = []
    if manifest is not None:
        try:
            tops = {str(k): str(v) for k, v in (manifest.get("top_priors") or {}).items()}
            ups = {int(k): str(v) for k, v in (manifest.get("upsamplers") or {}).items()}
        except (AttributeError, TypeError, ValueError):
            tops, ups = {}, {}
            problems.append(f"{folder / MANIFEST_NAME} is malformed")
        vqvae_stem = str(manifest.get("vqvae") or "vqvae")
        rate = manifest.get("sample_rate")
        sample_rate = rate if isinstance(rate, int) else None
    else:
        tops = {stem.removeprefix("prior_"): stem for stem, s in settings.items() if _is_top_prior(s)}
        ups = {
            level: f"upsampler_level_{level}" for level in (1, 0) if f"upsampler_level_{level}" in settings
        }
        vqvae_stem, sample_rate = "vqvae", None
    vqvae = settings.get(vqvae_stem)
    if vqvae is None or vqvae.get("kind") != "vqvae":
        problems.append(f"no VQ-VAE ({vqvae_stem}.json)")
    elif sample_rate is None:
        rate = vqvae["config"].get("sample_rate")
        sample_rate = rate if isinstance(rate, int) else None
    if not tops and not problems:
        problems.append("no top-level prior")
    for stem in (vqvae_stem, *tops.values(), *ups.values()):
        if stem in settings or stem == vqvae_stem:
            if stem in settings and not (folder / f"{stem}.safetensors").is_file():
                problems.append(f"{stem}.safetensors is missing")
        else:
            problems.append(f"{stem}.json is missing")
    if ups and len(ups) < 2:
        problems.append("only one of the two upsamplers")
    return ModelEntry(
        name=name,
        kind=kind,
        folder=folder,
        state="incomplete" if problems else "ready",
        problem="; ".join(problems),
        size_bytes=folder_bytes(folder),
        top_priors=tuple(sorted(tops)),
        sample_rate=sample_rate,
        upsamplers=len(ups) >= 2,
        linked_to=linked,
    )


def default_entry(folder: Path = DEFAULT_MODEL_DIR) -> ModelEntry:
    """The embedded default model: ready once built, else 'not built' with how to build it."""
    if not (Path(folder) / MANIFEST_NAME).is_file():
        return ModelEntry(DEFAULT_MODEL, "default", Path(folder), "not built",
                          problem=f"not built yet (nothing in {folder}); {BUILD_DEFAULT_HINT}")  # fmt: skip
    return describe_folder(Path(folder), DEFAULT_MODEL, "default")


def installed_entries(home: Path) -> tuple[ModelEntry, ...]:
    """Every model folder under `home` (hidden ones, such as downloads and half-made copies, left out)."""
    if not Path(home).is_dir():
        return ()
    folders = sorted(
        p for p in Path(home).iterdir() if not p.name.startswith(".") and (p.is_dir() or p.is_symlink())
    )
    return tuple(describe_folder(p) for p in folders)


# --- official models -----------------------------------------------------------------------------------


def _converted(folder: Path, name: str) -> bool:
    return (folder / f"{name}.json").is_file() and (folder / f"{name}.safetensors").is_file()


def official_entries(home: Path, download_dir: Path | None = None) -> tuple[ModelEntry, ...]:
    """The official models: their files, what is converted already (here or, for the shared VQ-VAE and
    upsamplers, in another official model's folder, which the download reuses), what is half downloaded,
    and the least that is still to fetch. Imports cocompose.download (and with it torch)."""
    from cocompose.download import MODELS, OFFICIAL_MIN_BYTES, PART_SUFFIX, default_download_dir
    from engine.official.convert import OFFICIAL_FILES

    home = Path(home)
    download_dir = Path(download_dir) if download_dir is not None else default_download_dir(home)
    entries = []
    for model, files in MODELS.items():
        folder = home / model
        converted = tuple(f for f in files if _converted(folder, f))
        elsewhere = {f for f in files for other in MODELS if other != model and _converted(home / other, f)}
        partial = 0
        notes = []
        for f in files:
            part = download_dir / (OFFICIAL_FILES[f] + PART_SUFFIX)
            if f not in converted and part.is_file():
                partial += part.stat().st_size
        todo = [f for f in files if f not in converted and f not in elsewhere]
        if elsewhere - set(converted):
            notes.append(f"shares {', '.join(sorted(elsewhere - set(converted)))} with an installed model")
        full = sum(OFFICIAL_MIN_BYTES[f] for f in files)
        if len(converted) == len(files):
            state = "ready"
        elif converted or partial:
            state = "partial"
        else:
            state = "available"
        entry = describe_folder(folder, model, "official") if state == "ready" else None
        entries.append(
            ModelEntry(
                name=model,
                kind="official",
                folder=folder,
                state=entry.state if entry is not None else state,
                problem=entry.problem if entry is not None else "",
                size_bytes=entry.size_bytes if entry is not None else None,
                top_priors=entry.top_priors if entry is not None else (),
                sample_rate=entry.sample_rate if entry is not None else None,
                upsamplers=entry.upsamplers if entry is not None else False,
                download_bytes=max(0, sum(OFFICIAL_MIN_BYTES[f] for f in todo) - partial),
                full_bytes=full,
                partial_bytes=partial,
                files=tuple(files),
                converted=converted,
                notes=tuple(notes),
            )
        )
    return tuple(entries)


def official_request(model: str, home: Path | None = None):
    """The DownloadRequest the model manager makes for an official model: into home/MODEL, downloads in
    home/.downloads, server addresses from the environment (as `cocompose download-jukebox`)."""
    from cocompose.download import DownloadRequest, default_download_dir, settings_from_env

    home = Path(home) if home is not None else models_home()
    return DownloadRequest(model, home, default_download_dir(home), settings=settings_from_env())


def scan(home: Path | None = None, default_dir: Path = DEFAULT_MODEL_DIR,
         download_dir: Path | None = None) -> Catalog:  # fmt: skip
    """The whole catalog. Official models are listed apart, so their folders are not listed twice."""
    from cocompose.download import MODELS

    home = Path(home) if home is not None else models_home()
    installed = tuple(e for e in installed_entries(home) if e.name not in MODELS)
    return Catalog(default_entry(default_dir), installed, official_entries(home, download_dir), home)


def human_bytes(n: float | None) -> str:
    """The size as the downloader prints it (decimal units), "?" when unknown. The same text as
    cocompose.fetch.human_bytes (a test checks), written out here because the GUI thread calls it and
    importing cocompose.fetch loads torch."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# --- adding a folder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyProgress:
    """Bytes copied so far of all the folder's files (fields named as DownloadProgress's)."""

    stage: str
    file: str = ""
    done: int = 0
    total: int | None = None
    rate: float | None = None
    eta_s: float | None = None
    message: str = ""


def check_model_name(name: str, home: Path) -> str:
    """A name an added model can have: a plain folder name, not 'default', not taken. Returns it trimmed."""
    from cocompose.download import MODELS

    name = name.strip()
    if not name:
        raise CatalogError("the model needs a name")
    if name.startswith(".") or os.sep in name or (os.altsep and os.altsep in name):
        raise CatalogError(f"{name!r} cannot be a model name: use a plain folder name, not starting with '.'")
    if name == DEFAULT_MODEL or name in MODELS:
        raise CatalogError(
            f"{name!r} is reserved (the default model or an official one); choose another name"
        )
    target = Path(home) / name
    if target.exists() or target.is_symlink():
        raise CatalogError(f"a model named {name!r} is already installed ({target}); choose another name")
    return name


def add_model_folder(
    source: Path,
    home: Path | None = None,
    *,
    link: bool = False,
    name: str | None = None,
    progress: Callable[[CopyProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Install the model folder `source` under `home` as NAME (default: the folder's name).

    link=True makes home/NAME a symbolic link to `source` (no disk used; the model stays where it is and
    disappears from the list if that folder is moved). Otherwise the files are copied into a hidden
    folder that is renamed into place once complete, so a cancelled or failed copy leaves nothing. The
    source is never changed. Returns the installed folder.
    """
    report = progress or (lambda event: None)
    cancel = cancel or threading.Event()
    home = Path(home) if home is not None else models_home()
    source = Path(source).expanduser()
    entry = describe_folder(source)
    if not entry.usable:
        raise CatalogError(f"{source} is not a model folder Cocompose can use: {entry.problem}")
    real = source.resolve()
    if home.exists() and real.parent == home.resolve():
        raise CatalogError(f"{source} is already in the models folder, as {real.name!r}")
    name = check_model_name(name if name is not None else real.name, home)
    target = home / name
    home.mkdir(parents=True, exist_ok=True)
    if link:
        os.symlink(real, target, target_is_directory=True)
        report(CopyProgress("note", message=f"linked {target} -> {real}"))
        return target
    files = [Path(root) / f for root, _dirs, names in os.walk(real) for f in names]
    total = sum(f.stat().st_size for f in files)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.adding-", dir=home))
    try:
        done, start = 0, time.monotonic()
        for path in files:
            out = staging / path.relative_to(real)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as src, open(out, "wb") as dst:
                while chunk := src.read(COPY_CHUNK):
                    if cancel.is_set():
                        raise AddCancelled(f"cancelled; nothing was added (the copy of {source} was removed)")
                    dst.write(chunk)
                    done += len(chunk)
                    elapsed = time.monotonic() - start
                    rate = done / elapsed if elapsed > 0.2 else None
                    eta = (total - done) / rate if rate else None
                    report(CopyProgress("copy", str(path.relative_to(real)), done, total, rate, eta))
                dst.flush()
                os.fsync(dst.fileno())
            shutil.copystat(path, out)
        try:
            os.rename(staging, target)  # fails rather than merge if the name was taken meanwhile
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise CatalogError(
                    f"a model named {name!r} appeared while copying; nothing was added"
                ) from None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report(CopyProgress("note", message=f"copied {source} to {target}"))
    return target


# --- what went wrong, in words -------------------------------------------------------------------------


def explain_failure(exc: BaseException, action: str = "the download") -> str:
    """A message for the dialog: disk full, permissions, network and the downloader's own errors."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"the disk is full{where}: {action} stopped. Free some space; what was downloaded is kept, "
            "and the next attempt continues from there"
        )
    if isinstance(exc, PermissionError):
        return f"{action} cannot write {exc.filename or 'its files'}: permission denied"
    text = str(exc) or type(exc).__name__
    if "run the same command again to resume" in text:
        text = text.replace("run the same command again to resume", "press Download again to resume")
    return text
