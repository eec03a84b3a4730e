"""Fetch the official Jukebox checkpoints over HTTP(S) and convert them into a Cocompose model folder.

`download_jukebox(request, progress, cancel)` is what `cocompose download-jukebox MODEL` and the app's
model manager call. Each official file goes to NAME.part beside its final place in the download folder;
an interrupted or cancelled download keeps the .part and the next run asks the server for the rest with
a Range request. A file is moved to its final name only once its size matches what the server announced
(Content-Length, or the total of a Content-Range), so a file without the .part suffix is always complete.
The files are then converted (engine.official.convert) into a hidden folder beside the model folder and
renamed into place when every file has converted.

Progress comes back through a callback as `DownloadProgress` reports; setting the `cancel` event stops
at the next chunk (or between conversions) with `DownloadCancelled`, keeping what was downloaded.
No Qt here: the GUI runs this in a worker and relays the reports.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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

PART_SUFFIX = ".part"
# What each converted file was made from, kept in the model folder (a JSON the model loaders skip).
RECORD_NAME = "download.json"
USER_AGENT = "cocompose-download/1"


class DownloadError(ValueError):
    """A download cannot go on: names the file, the URL and what to do."""


class DownloadCancelled(Exception):
    """The cancel event was set; what was downloaded is kept for the next run."""


class _Transient(Exception):
    """A failure worth retrying (dropped connection, timeout, 5xx)."""


class _StartOver(Exception):
    """The .part cannot be continued (the server's file changed or it answered oddly): begin again."""


@dataclass(frozen=True)
class DownloadSettings:
    """How to talk to the server. backoff_s doubles after each failed attempt in a row."""

    base_url: str = OFFICIAL_BASE_URL
    ids_url: str = OFFICIAL_IDS_URL
    retries: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 60.0
    chunk_bytes: int = 1 << 20


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
class DownloadProgress:
    """One report. stage: "download" while bytes move, "convert", or "note" (a message to show).

    done/total are this file's bytes on disk and its full size (None when the server did not say);
    rate is bytes/s measured in this run; all_done/all_total cover every file still to fetch.
    """

    stage: str
    file: str = ""
    done: int = 0
    total: int | None = None
    rate: float | None = None
    eta_s: float | None = None
    all_done: int = 0
    all_total: int | None = None
    message: str = ""


@dataclass(frozen=True)
class DownloadResult:
    folder: Path
    downloaded: tuple[str, ...]  # files fetched (fully or the rest of a .part) in this run
    converted: tuple[str, ...]  # file names converted in this run
    skipped: tuple[str, ...]  # file names already converted in the model folder


Report = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class _Remote:
    label: str  # what the user reads: "5b/vqvae.pth.tar", "ids/v2_artist_ids.txt"
    url: str
    target: Path
    min_bytes: int = 0


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


# ---------------------------------------------------------------------------------------------------
# One file over HTTP


class _Rate:
    """Bytes per second since this run started on the file (earlier runs' bytes don't count)."""

    def __init__(self, start_bytes: int) -> None:
        self.start_bytes, self.start = start_bytes, time.monotonic()

    def rate(self, done: int) -> float | None:
        elapsed = time.monotonic() - self.start
        gained = done - self.start_bytes
        return gained / elapsed if elapsed > 0.2 and gained > 0 else None


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_meta(part: Path) -> dict:
    try:
        meta = json.loads(_meta_path(part).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """'bytes START-END/TOTAL' -> (START, TOTAL or None for '*'); None when unreadable."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    start, _, _ = span.partition("-")
    try:
        return int(start), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _size_from_416(exc: urllib.error.HTTPError) -> int | None:
    value = exc.headers.get("Content-Range", "") if exc.headers else ""
    if value.startswith("bytes */"):
        try:
            return int(value[8:])
        except ValueError:
            return None
    return None


def _http_error(exc: urllib.error.HTTPError, remote: _Remote) -> Exception:
    if exc.code in (408, 425, 429) or exc.code >= 500:
        return _Transient(f"HTTP {exc.code} {exc.reason}")
    if exc.code == 404:
        return DownloadError(
            f"{remote.label} not found on the server ({remote.url}, HTTP 404); check the base URL "
            f"(--base-url or ${BASE_URL_ENV})"
        )
    return DownloadError(f"the server refused {remote.url}: HTTP {exc.code} {exc.reason}")


def remote_size(url: str, timeout_s: float) -> int | None:
    """The size a HEAD request announces; None when the server does not say (or does not answer).

    404 is raised as urllib's HTTPError so the caller can name the file before downloading anything.
    """
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise
        return None
    except (OSError, http.client.HTTPException):
        return None
    try:
        return int(length) if length is not None else None
    except ValueError:
        return None


def fetch(
    remote: _Remote,
    settings: DownloadSettings,
    report: Report,
    cancel: threading.Event,
    progress_base: tuple[int, int | None] = (0, None),
) -> int:
    """Download remote.url to remote.target through a .part file, resuming one left by an earlier run.

    Returns the file's size. Transient failures are retried (settings.retries attempts in a row without
    progress, with doubling back-off); the .part is kept on every failure, so a later run resumes.
    """
    part = remote.target.with_name(remote.target.name + PART_SUFFIX)
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            size = _fetch_once(remote, part, settings, report, cancel, progress_base)
            break
        except _StartOver as exc:
            report(DownloadProgress("note", remote.label, message=f"{remote.label}: {exc}; starting over"))
            part.unlink(missing_ok=True)
            _meta_path(part).unlink(missing_ok=True)
            failures += 1
            if failures > settings.retries:
                raise DownloadError(f"{remote.label}: {exc}, again after {failures} attempts") from None
        except _Transient as exc:
            now = part.stat().st_size if part.exists() else 0
            failures = 1 if now > before else failures + 1
            if failures > settings.retries:
                raise DownloadError(
                    f"downloading {remote.label} failed {failures} times in a row ({exc}); {now} bytes are "
                    f"kept in {part}: run the same command again to resume"
                ) from None
            wait = settings.backoff_s * 2 ** (failures - 1)
            report(
                DownloadProgress(
                    "note", remote.label, message=f"{remote.label}: {exc}; retrying in {wait:.0f} s"
                )
            )
            if cancel.wait(wait):
                raise DownloadCancelled(f"cancelled; {now} bytes of {remote.label} kept in {part}") from None
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, remote.target)
    # The receipt marks the file as ours: only files with one are deleted after conversion, never
    # official files a user placed in a --download-dir by hand.
    receipt = json.dumps({"url": remote.url, "bytes": size})
    checkpoint.atomic_write(_receipt_path(remote.target), lambda tmp: tmp.write_text(receipt))
    _meta_path(part).unlink(missing_ok=True)
    return size


def _receipt_path(target: Path) -> Path:
    return target.with_name(target.name + ".source.json")


def _fetch_once(
    remote: _Remote,
    part: Path,
    settings: DownloadSettings,
    report: Report,
    cancel: threading.Event,
    progress_base: tuple[int, int | None],
) -> int:
    have = part.stat().st_size if part.exists() else 0
    meta = _read_meta(part) if have else {}
    if have and meta.get("url") != remote.url:
        # A .part from another address (or with its description lost) cannot be trusted to continue.
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(remote.url, headers=headers), timeout=settings.timeout_s
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            total = _size_from_416(exc)
            if total is not None and total == have == meta.get("total"):
                return have  # the .part already holds the whole file
            raise _StartOver("the saved part does not fit the file on the server") from None
        raise _http_error(exc, remote) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(_describe(exc)) from None

    with response:
        if response.status == 206 and have:
            parsed = _parse_content_range(response.headers.get("Content-Range"))
            if parsed is None or parsed[0] != have:
                raise _StartOver("the server answered the range request with another range")
            total = parsed[1]
            if meta.get("total") is not None and total is not None and total != meta["total"]:
                raise _StartOver(f"the file on the server changed size ({meta['total']} -> {total} bytes)")
            report(
                DownloadProgress(
                    "note",
                    remote.label,
                    have,
                    total,
                    message=f"{remote.label}: resuming at {human_bytes(have)}",
                )
            )
            mode = "ab"
        elif response.status in (200, 206):
            if have:
                report(
                    DownloadProgress(
                        "note",
                        remote.label,
                        message=f"{remote.label}: the server ignored the range request (or the file "
                        "changed); downloading it again from the start",
                    )
                )
            have = 0
            total = _int_header(response.headers.get("Content-Length"))
            if response.status == 206:
                parsed = _parse_content_range(response.headers.get("Content-Range"))
                total = parsed[1] if parsed and parsed[0] == 0 else None
            _write_meta(part, remote.url, total, _validator(response.headers))
            mode = "wb"
        else:
            raise DownloadError(f"unexpected answer from {remote.url}: HTTP {response.status}")
        if total is not None and total < remote.min_bytes:
            raise DownloadError(
                f"the server offers {human_bytes(total)} for {remote.label}, but the official file holds at "
                f"least {human_bytes(remote.min_bytes)} of weights: wrong file or wrong server ({remote.url})"
            )
        meter = _Rate(have)
        base_done, all_total = progress_base
        with open(part, mode) as out:
            while True:
                if cancel.is_set():
                    raise DownloadCancelled(f"cancelled; {have} bytes of {remote.label} kept in {part}")
                try:
                    chunk = response.read(settings.chunk_bytes)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(_describe(exc)) from None
                if not chunk:
                    break
                out.write(chunk)
                have += len(chunk)
                if total is not None and have > total:
                    out.close()
                    part.unlink(missing_ok=True)
                    raise DownloadError(
                        f"the server sent more than the {total} bytes it announced for {remote.label}"
                    )
                rate = meter.rate(have)
                eta = (total - have) / rate if rate and total is not None else None
                report(
                    DownloadProgress(
                        "download", remote.label, have, total, rate, eta, base_done + have, all_total
                    )
                )
    if total is not None and have != total:
        raise _Transient(f"the connection closed after {have} of {total} bytes")
    return have


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason or exc}"


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _validator(headers) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range needs to tell the same file from a new one."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _write_meta(part: Path, url: str, total: int | None, validator: str | None) -> None:
    data = json.dumps({"url": url, "total": total, "validator": validator})
    checkpoint.atomic_write(_meta_path(part), lambda tmp: tmp.write_text(data))


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as disks and servers count)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------
# A whole model


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
        _Remote(
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
            _Remote(f"ids/{name}", _join(settings.ids_url, name), ids_source / name) for name in ID_LIST_FILES
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
            if not remote.label.startswith("ids/") and _receipt_path(remote.target).is_file():
                remote.target.unlink(missing_ok=True)
                _receipt_path(remote.target).unlink()
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
    remotes: list[_Remote], settings: DownloadSettings, report: Report
) -> dict[str, int | None]:
    """Sizes from HEAD requests, so that a missing file or a full disk shows before any download."""
    sizes: dict[str, int | None] = {}
    for remote in remotes:
        report(DownloadProgress("note", remote.label, message=f"checking {remote.url}"))
        try:
            sizes[remote.label] = remote_size(remote.url, settings.timeout_s)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, remote) from None
    return sizes


def _check_sizes(remotes: list[_Remote], sizes: dict[str, int | None]) -> None:
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
    to_fetch: list[_Remote],
    sizes: dict[str, int | None],
    present: list[_Remote],
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
