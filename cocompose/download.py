"""Fetch the official Jukebox checkpoints over HTTP(S) and convert them into a Cocompose model folder.

`download_jukebox(request, progress, cancel)` is what `cocompose download-jukebox MODEL` and the app's
model manager call. Each file is fetched by `cocompose.fetch` (resume, size checks, retries); a file
without the .part suffix is always complete. The files are then converted (engine.official.convert)
into a hidden folder beside the model folder, which is renamed into place once every file converted.

Progress comes back through a callback as `DownloadProgress` reports; setting the `cancel` event stops
at the next chunk (or between conversions) with `DownloadCancelled`, keeping what was downloaded.
No Qt here: the GUI runs this in a worker and relays the reports.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import urllib.error
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cocompose.fetch import (
    PART_SUFFIX,
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    FetchSettings,
    Remote,
    Report,
    fetch,
    http_error,
    human_bytes,
    receipt_path,
    remote_size,
)
from engine import checkpoint
from engine.official.convert import ID_LIST_FILES, OFFICIAL_FILES

OFFICIAL_BASE_URL = "https://openaipublic.azureedge.net/jukebox/models/"
# The artist/genre id lists live in the (archived) openai/jukebox repository, not beside the weights.
OFFICIAL_IDS_URL = "https://raw.githubusercontent.com/openai/jukebox/master/jukebox/data/ids/"
BASE_URL_ENV = "COCOMPOSE_JUKEBOX_URL"
IDS_URL_ENV = "COCOMPOSE_JUKEBOX_IDS_URL"

# Each official model is the shared VQ-VAE, its own top prior and the two shared upsamplers.
MODELS: dict[str, tuple[str, ...]] = {
    "5b": ("vqvae", "prior_5b", "upsampler_level_1", "upsampler_level_0"),
    "5b_lyrics": ("vqvae", "prior_5b_lyrics", "upsampler_level_1", "upsampler_level_0"),
    "1b_lyrics": ("vqvae", "prior_1b_lyrics", "upsampler_level_1", "upsampler_level_0"),
}

# Bytes of weights each official file must at least hold (the parameters at their stored dtypes, from
# the reference builders; ../shared/jukebox-reference/fixture/official_layout/summary.json). A server
# offering less is serving something else. Only checked for official-size models (no hps given).
OFFICIAL_MIN_BYTES: dict[str, int] = {
    "vqvae": 7_515_916,
    "upsampler_level_0": 3_940_921_344,
    "upsampler_level_1": 3_940_921_344,
    "prior_5b": 10_288_531_200,
    "prior_5b_lyrics": 11_451_832_000,
    "prior_1b_lyrics": 3_787_997_184,
}

# What each converted file was made from, kept in the model folder (a JSON the model loaders skip).
RECORD_NAME = "download.json"


@dataclass(frozen=True)
class DownloadSettings(FetchSettings):
    """Where the official files and the id lists are, and how to talk to the server."""

    base_url: str = OFFICIAL_BASE_URL
    ids_url: str = OFFICIAL_IDS_URL


@dataclass(frozen=True)
class DownloadRequest:
    """What to fetch and where. files: a subset of the model's files (None = all of MODELS[model]).

    ids_dir: a local folder with the four id lists instead of downloading them. hps_by_name: reference
    hyper-parameters per file name for files that are not official-size (as `convert-jukebox --hparams`).
    """

    model: str
    models_dir: Path
    download_dir: Path
    files: tuple[str, ...] | None = None
    ids_dir: Path | None = None
    hps_by_name: dict[str, dict] | None = None
    keep_downloads: bool = False
    settings: DownloadSettings = field(default_factory=DownloadSettings)


@dataclass(frozen=True)
class DownloadResult:
    folder: Path
    downloaded: tuple[str, ...]  # files fetched (fully or the rest of a .part) in this run
    converted: tuple[str, ...]  # file names converted in this run
    skipped: tuple[str, ...]  # file names already converted in the model folder


def model_files(model: str, only: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The file names of `model`, or the chosen subset of them; unknown names are a clear error."""
    if model not in MODELS:
        raise DownloadError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    names = MODELS[model]
    if not only:
        return names
    unknown = [name for name in only if name not in names]
    if unknown:
        raise DownloadError(f"{model} has no file {', '.join(unknown)}; its files are {', '.join(names)}")
    return tuple(name for name in names if name in only)


def default_download_dir(models_dir: Path) -> Path:
    """Downloads sit in a hidden folder of the models folder: same disk, so nothing crosses devices."""
    return Path(models_dir) / ".downloads" / "jukebox"


def settings_from_env(base_url: str | None = None, ids_url: str | None = None) -> DownloadSettings:
    """Settings with the base URLs from the arguments, else the environment, else the official ones."""
    base = base_url or os.environ.get(BASE_URL_ENV) or OFFICIAL_BASE_URL
    ids = ids_url or os.environ.get(IDS_URL_ENV) or OFFICIAL_IDS_URL
    for url in (base, ids):
        if not url.startswith(("http://", "https://")):
            raise DownloadError(f"{url!r} is not an http:// or https:// URL")
    return DownloadSettings(base_url=base, ids_url=ids)


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def _is_converted(folder: Path, name: str) -> bool:
    weights, settings = checkpoint.paths_for(folder / name)
    return weights.is_file() and settings.is_file()


def _has_ids(folder: Path) -> bool:
    return all((folder / "ids" / name).is_file() for name in ID_LIST_FILES)


def download_jukebox(
    request: DownloadRequest,
    progress: Report | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Fetch what `request.model` still lacks, convert it into models_dir/MODEL, and say what was done."""
    report = progress or (lambda event: None)
    cancel = cancel or threading.Event()
    names = model_files(request.model, request.files)
    folder = Path(request.models_dir) / request.model
    skipped = tuple(name for name in names if _is_converted(folder, name))
    todo = tuple(name for name in names if name not in skipped)
    needs_ids = any(name != "vqvae" for name in names) and not _has_ids(folder)
    if not todo and not needs_ids:
        report(DownloadProgress("note", message=f"{request.model} is already converted in {folder}"))
        return DownloadResult(folder, (), (), skipped)
    for name in skipped:
        report(DownloadProgress("note", name, message=f"{name} is already converted in {folder}"))
    if needs_ids and request.ids_dir is not None:
        missing = [name for name in ID_LIST_FILES if not (Path(request.ids_dir) / name).is_file()]
        if missing:
            raise DownloadError(f"id list folder {request.ids_dir} lacks {', '.join(missing)}")
    with _exclusive(Path(request.download_dir)):
        return _download_locked(request, folder, todo, skipped, needs_ids, report, cancel)


def _download_locked(
    request: DownloadRequest,
    folder: Path,
    todo: tuple[str, ...],
    skipped: tuple[str, ...],
    needs_ids: bool,
    report: Report,
    cancel: threading.Event,
) -> DownloadResult:
    settings = request.settings
    download_dir = Path(request.download_dir)
    official_size = request.hps_by_name is None
    record = {
        name: {"url": _join(settings.base_url, OFFICIAL_FILES[name]), "hps": _hps_digest(request, name)}
        for name in todo
    }
    reuse = _reusable(Path(request.models_dir), request.model, record)
    for name, other in reuse.items():
        report(DownloadProgress("note", name, message=f"{name} is already converted in {other}; reusing it"))
    wanted = [
        Remote(
            OFFICIAL_FILES[name],
            record[name]["url"],
            download_dir / OFFICIAL_FILES[name],
            OFFICIAL_MIN_BYTES[name] if official_size else 0,
        )
        for name in todo
        if name not in reuse
    ]
    ids_source = Path(request.ids_dir) if needs_ids and request.ids_dir is not None else None
    if needs_ids and ids_source is None:
        ids_source = download_dir / "ids"
        wanted += [
            Remote(f"ids/{name}", _join(settings.ids_url, name), ids_source / name) for name in ID_LIST_FILES
        ]
    present = [remote for remote in wanted if remote.target.is_file()]
    for remote in present:
        report(DownloadProgress("note", remote.label, message=f"{remote.label} is already downloaded"))
    to_fetch = [remote for remote in wanted if not remote.target.is_file()]

    sizes = _announced_sizes(to_fetch, settings, report)
    _check_sizes(to_fetch, sizes)
    _check_space(to_fetch, sizes, present, download_dir, Path(request.models_dir))

    fetched: list[str] = []
    known = [sizes[r.label] for r in to_fetch]
    all_total = sum(s for s in known if s is not None) if None not in known else None
    done_before = 0
    for remote in to_fetch:
        size = fetch(remote, settings, report, cancel, (done_before, all_total))
        fetched.append(remote.label)
        done_before += size

    converted = _convert_into(request, folder, todo, reuse, ids_source, record, report, cancel)
    if not request.keep_downloads:
        for remote in wanted:
            if not remote.label.startswith("ids/") and receipt_path(remote.target).is_file():
                remote.target.unlink(missing_ok=True)
                receipt_path(remote.target).unlink()
    report(DownloadProgress("note", message=f"{request.model} is ready in {folder}"))
    return DownloadResult(folder, tuple(fetched), converted, skipped)


@contextmanager
def _exclusive(download_dir: Path):
    """One download at a time per download folder (the CLI and the app could otherwise append to the
    same .part); a second one is told so instead of waiting."""
    download_dir.mkdir(parents=True, exist_ok=True)
    with open(download_dir / ".lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(
                f"another download is already using {download_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_record(folder: Path) -> dict:
    try:
        data = json.loads((folder / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _hps_digest(request: DownloadRequest, name: str) -> str | None:
    """What the conversion of `name` depends on besides the file: its hyper-parameters (and for a prior
    the VQ-VAE's); None for official sizes."""
    if request.hps_by_name is None:
        return None
    used = [request.hps_by_name.get(name), request.hps_by_name.get("vqvae")]
    return hashlib.sha256(json.dumps(used, sort_keys=True, default=str).encode()).hexdigest()


def _reusable(models_dir: Path, model: str, record: dict[str, dict]) -> dict[str, Path]:
    """Files another official model in models_dir converted from the same URL with the same settings
    (the VQ-VAE and the upsamplers are shared by all three): name -> that model's folder."""
    found: dict[str, Path] = {}
    for other in MODELS:
        done = _read_record(models_dir / other) if other != model else {}
        for name, entry in record.items():
            if name not in found and done.get(name) == entry and _is_converted(models_dir / other, name):
                found[name] = models_dir / other
    return found


def _announced_sizes(
    remotes: list[Remote], settings: DownloadSettings, report: Report
) -> dict[str, int | None]:
    """Sizes from HEAD requests, so that a missing file or a full disk shows before any download."""
    sizes: dict[str, int | None] = {}
    for remote in remotes:
        report(DownloadProgress("note", remote.label, message=f"checking {remote.url}"))
        try:
            sizes[remote.label] = remote_size(remote.url, settings.timeout_s)
        except urllib.error.HTTPError as exc:
            ids = remote.label.startswith("ids/")
            option = f"--ids-url or ${IDS_URL_ENV}" if ids else f"--base-url or ${BASE_URL_ENV}"
            raise http_error(exc, remote, f"; check the address ({option})") from None
    return sizes


def _check_sizes(remotes: list[Remote], sizes: dict[str, int | None]) -> None:
    for remote in remotes:
        size = sizes[remote.label]
        if size is not None and size < remote.min_bytes:
            raise DownloadError(
                f"the server offers {human_bytes(size)} for {remote.label}, but the official file holds at "
                f"least {human_bytes(remote.min_bytes)} of weights: wrong file or wrong server ({remote.url})"
            )


def _nearest_existing(folder: Path) -> Path:
    """The folder itself or its closest existing parent (the disk it will be created on)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_space(
    to_fetch: list[Remote],
    sizes: dict[str, int | None],
    present: list[Remote],
    download_dir: Path,
    models_dir: Path,
) -> None:
    """Refuse to start when the known sizes do not fit: the rest of each download plus the converted
    models (about as large as the official files; those stay until conversion has finished)."""
    rest = 0
    for remote in to_fetch:
        size = sizes[remote.label]
        if size is not None:
            part = remote.target.with_name(remote.target.name + PART_SUFFIX)
            rest += max(0, size - (part.stat().st_size if part.exists() else 0))
    converted = sum(
        s for r in to_fetch if (s := sizes[r.label]) is not None and not r.label.startswith("ids/")
    )
    converted += sum(r.target.stat().st_size for r in present if not r.label.startswith("ids/"))
    needs = {download_dir: rest}
    if _nearest_existing(models_dir).stat().st_dev == _nearest_existing(download_dir).stat().st_dev:
        needs[download_dir] += converted
    else:
        needs[models_dir] = converted
    for folder, need in needs.items():
        free = shutil.disk_usage(_nearest_existing(folder)).free
        if need > free:
            raise DownloadError(
                f"not enough disk space in {folder}: the download and conversion need about "
                f"{human_bytes(need)}, {human_bytes(free)} is free"
            )


def _convert_into(
    request: DownloadRequest,
    folder: Path,
    todo: tuple[str, ...],
    reuse: dict[str, Path],
    ids_source: Path | None,
    record: dict[str, dict],
    report: Report,
    cancel: threading.Event,
) -> tuple[str, ...]:
    """Convert into a hidden folder beside `folder`, then rename it into place (or move each finished
    model into a folder that already holds others): a model folder never holds a half-written model."""
    from engine.official.convert import convert_jukebox

    models_dir = Path(request.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    for stale in models_dir.glob(f".{request.model}.converting-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed; we hold the lock
    staging = Path(tempfile.mkdtemp(prefix=f".{request.model}.converting-", dir=models_dir))
    try:
        for name in todo:
            if cancel.is_set():
                raise DownloadCancelled("cancelled before converting " + name)
            if name in reuse:
                for path in checkpoint.paths_for(reuse[name] / name):
                    _link_or_copy(path, staging / path.name)
                continue
            report(DownloadProgress("convert", name, message=f"converting {OFFICIAL_FILES[name]} -> {name}"))
            convert_jukebox(
                request.download_dir, staging, request.hps_by_name, only=[name], progress=lambda m: None
            )
        if ids_source is not None:
            for file_name in ID_LIST_FILES:
                checkpoint.atomic_write(
                    staging / "ids" / file_name,
                    lambda tmp, f=file_name: shutil.copyfile(ids_source / f, tmp),
                )
        entries = _read_record(folder) | record
        text = json.dumps({"model": request.model, "files": entries}, indent=2, sort_keys=True)
        (staging / RECORD_NAME).write_text(text)
        if not folder.exists():
            os.replace(staging, folder)
        else:
            _move_contents(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return todo


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no extra disk; models are replaced, never edited in place), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _move_contents(staging: Path, folder: Path) -> None:
    """Move each converted model into an existing folder, weights before settings (a model is found by
    its settings file, so it is never seen without its weights)."""
    for weights in sorted(staging.glob("*.safetensors")):
        os.replace(weights, folder / weights.name)
        settings = weights.with_suffix(".json")
        os.replace(settings, folder / settings.name)
    if (staging / "ids").is_dir():
        (folder / "ids").mkdir(exist_ok=True)
        for item in (staging / "ids").iterdir():
            os.replace(item, folder / "ids" / item.name)
    os.replace(staging / RECORD_NAME, folder / RECORD_NAME)
