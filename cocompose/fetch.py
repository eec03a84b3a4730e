"""One file over HTTP(S) with urllib: resume with Range, size checks, retries, progress and cancel.

`fetch(remote, settings, report, cancel)` downloads to NAME.part beside the target. An interrupted or
cancelled download keeps the .part (with NAME.part.json: the URL, the announced size and the ETag or
Last-Modified), and the next call asks for the rest with Range + If-Range; a server that answers with
the whole file instead is followed from the start. The .part is renamed to NAME only once its size is
what the server announced (Content-Length, or the total of a Content-Range), so a file without the
suffix is complete. NAME.source.json then records where it came from.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine import checkpoint

PART_SUFFIX = ".part"
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
class FetchSettings:
    """How to talk to a server. backoff_s doubles after each failed attempt in a row."""

    retries: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 60.0
    chunk_bytes: int = 1 << 20


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


Report = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class Remote:
    """One file to fetch: min_bytes is the least size that can be right (0: any)."""

    label: str  # what the user reads: "5b/vqvae.pth.tar", "ids/v2_artist_ids.txt"
    url: str
    target: Path
    min_bytes: int = 0


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


def http_error(exc: urllib.error.HTTPError, remote: Remote, hint: str = "") -> Exception:
    """The exception an HTTP error status becomes: retried (timeouts, 429, 5xx) or a clear error."""
    if exc.code in (408, 425, 429) or exc.code >= 500:
        return _Transient(f"HTTP {exc.code} {exc.reason}")
    if exc.code == 404:
        return DownloadError(f"{remote.label} not found on the server ({remote.url}, HTTP 404){hint}")
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
    remote: Remote,
    settings: FetchSettings,
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
    checkpoint.atomic_write(receipt_path(remote.target), lambda tmp: tmp.write_text(receipt))
    _meta_path(part).unlink(missing_ok=True)
    return size


def receipt_path(target: Path) -> Path:
    return target.with_name(target.name + ".source.json")


def _fetch_once(
    remote: Remote,
    part: Path,
    settings: FetchSettings,
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
        raise http_error(exc, remote) from None
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
                    # read1: what has arrived (up to a chunk), not a full chunk: on a slow or stalled line
                    # the .part, the progress and the cancel check keep up instead of waiting for 1 MiB.
                    chunk = response.read1(settings.chunk_bytes)
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
