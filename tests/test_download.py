"""`cocompose download-jukebox`: real HTTP on loopback serving the fixture's official-format files.

The server is a threaded http.server with switches for the failures a download meets in practice: a
connection that drops midway, a server that ignores Range, a body shorter than announced, a missing file.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from cocompose.download import (
    MODELS,
    DownloadCancelled,
    DownloadError,
    DownloadRequest,
    DownloadSettings,
    download_jukebox,
)
from engine import checkpoint
from engine.official.convert import ID_LIST_FILES, OFFICIAL_FILES, convert_jukebox
from tests.reference import FIXTURE_DIR, IDS_DIR, arrays, hparams, require_fixture

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class ServerState:
    files: dict[str, bytes]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    drop_once: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hanging up, once
    stop_at: dict[str, int] = field(default_factory=dict)  # path -> offset the body always ends at
    head_length: dict[str, int] = field(default_factory=dict)  # path -> size HEAD announces
    pause_s: float = 0.0  # a pause after every 16 KiB of a body: a slow line
    ignore_range: bool = False
    # Set: every body stops after its first 16 KiB until the event is set (a line that stalls on cue).
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self, path: str) -> list[dict[str, str]]:
        return [headers for method, p, headers in self.requests if method == "GET" and p == path]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        with state.lock:
            state.requests.append((self.command, self.path, dict(self.headers)))
            drop = state.drop_once.pop(self.path, None) if body else None
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, wanted = 0, self.headers.get("Range")
        if wanted and not state.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        length = len(data) - start
        if not body and self.path in state.head_length:
            length = state.head_length[self.path]
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", f'"{len(data)}"')
        self.end_headers()
        if not body:
            return
        payload = data[start : state.stop_at.get(self.path, len(data))]
        if drop is not None:
            payload = payload[:drop]
        try:
            for at in range(0, len(payload), 1 << 14):
                self.wfile.write(payload[at : at + (1 << 14)])
                if state.hold is not None:
                    self.wfile.flush()
                    state.hold.wait(60)
                time.sleep(state.pause_s)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a cancel)
            pass


@pytest.fixture
def server():
    """A loopback server with the fixture's models under /models/ and the id lists under /ids/."""
    fixture = require_fixture()
    files = {f"/models/{rel}": (fixture / "models" / rel).read_bytes() for rel in OFFICIAL_FILES.values()}
    files.update({f"/ids/{name}": (IDS_DIR / name).read_bytes() for name in ID_LIST_FILES})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState(files)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _url(httpd, folder: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/{folder}/"


def _request(httpd, tmp_path: Path, model: str = "5b", **kwargs) -> DownloadRequest:
    settings = DownloadSettings(
        base_url=_url(httpd, "models"),
        ids_url=_url(httpd, "ids"),
        retries=2,
        backoff_s=0.01,
        timeout_s=10,
        chunk_bytes=1 << 12,
    )
    values = {
        "model": model,
        "models_dir": tmp_path / "models",
        "download_dir": tmp_path / "downloads",
        "hps_by_name": hparams()["resolved_hps"],
        "settings": settings,
    }
    return DownloadRequest(**(values | kwargs))


def _same_converted_model(got: Path, expected: Path) -> None:
    assert json.loads(got.with_suffix(".json").read_text()) == json.loads(
        expected.with_suffix(".json").read_text()
    )
    a, b = load_file(got.with_suffix(".safetensors")), load_file(expected.with_suffix(".safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def expected_lyrics(tmp_path: Path) -> Path:
    out = tmp_path / "expected_lyrics"
    convert_jukebox(FIXTURE_DIR / "models", out, hparams()["resolved_hps"], only=["prior_5b_lyrics"])
    return out / "prior_5b_lyrics"


VQVAE = "/models/5b/vqvae.pth.tar"


def _nothing_downloaded(tmp_path: Path) -> bool:
    return not [p for p in (tmp_path / "downloads").rglob("*") if p.name != ".lock"]


def test_download_and_convert_equals_converting_the_local_files(server, tmp_path):
    notes = []
    result = download_jukebox(_request(server, tmp_path), notes.append)
    folder = tmp_path / "models" / "5b"
    assert result.folder == folder and result.converted == MODELS["5b"]
    expected = tmp_path / "expected"
    convert_jukebox(FIXTURE_DIR / "models", expected, hparams()["resolved_hps"], only=list(MODELS["5b"]),
                    ids_dir=IDS_DIR)  # fmt: skip
    for name in MODELS["5b"]:
        _same_converted_model(folder / name, expected / name)
    for name in ID_LIST_FILES:
        assert (folder / "ids" / name).read_bytes() == (IDS_DIR / name).read_bytes()

    # The converted folder is a working bundle whose top prior gives the reference logits.
    from engine.bundle import ModelBundle

    bundle = ModelBundle.load(folder)
    ref = arrays("prior_5b_ref")
    with torch.no_grad():
        logits = bundle.top.logits(torch.from_numpy(ref["z"]), torch.from_numpy(ref["y"]), None)
    np.testing.assert_allclose(logits[0].numpy(), ref["preds"][0], atol=1e-4)

    # Progress covered every byte of every file; the official files it fetched are gone once converted,
    # and nothing half-made is left behind.
    last = {}
    for event in notes:
        if event.stage == "download":
            last[event.file] = event
    for rel in OFFICIAL_FILES.values():
        if rel.split("/")[0] == "5b":
            size = (FIXTURE_DIR / "models" / rel).stat().st_size
            assert last[rel].done == last[rel].total == size
    assert max(e.all_done for e in last.values()) == next(iter(last.values())).all_total
    leftovers = [p.name for p in (tmp_path / "downloads").rglob("*") if p.is_file() and p.name != ".lock"]
    # Only the small id lists (and the receipts that mark them as downloaded) stay, for other models.
    assert sorted(leftovers) == sorted([*ID_LIST_FILES, *(f"{n}.source.json" for n in ID_LIST_FILES)])
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["5b"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["download.json", "ids", *(f"{n}.{ext}" for n in MODELS["5b"] for ext in ("json", "safetensors"))]
    )

    # A second run finds everything converted and asks the server for nothing.
    before = len(server.state.requests)
    again = download_jukebox(_request(server, tmp_path))
    assert again.converted == () and again.skipped == MODELS["5b"]
    assert len(server.state.requests) == before

    # Another official model reuses the shared VQ-VAE and upsamplers: only its top prior is fetched.
    result = download_jukebox(_request(server, tmp_path, model="5b_lyrics"), notes.append)
    fetched = [p for m, p, _ in server.state.requests[before:] if m == "GET"]
    assert fetched == ["/models/5b_lyrics/prior_level_2.pth.tar"] and result.converted == MODELS["5b_lyrics"]
    lyrics = tmp_path / "models" / "5b_lyrics"
    shared = [f"{n}.safetensors" for n in ("vqvae", "upsampler_level_1", "upsampler_level_0")]
    assert [(lyrics / f).stat().st_ino for f in shared] == [(folder / f).stat().st_ino for f in shared]
    _same_converted_model(lyrics / "prior_5b_lyrics", expected_lyrics(tmp_path))


def test_a_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    size = len(server.state.files[VQVAE])
    server.state.drop_once[VQVAE] = cut = size // 3
    notes = []
    download_jukebox(_request(server, tmp_path, files=("vqvae",), keep_downloads=True), notes.append)
    first, second = server.state.gets(VQVAE)
    assert "Range" not in first
    assert second["Range"] == f"bytes={cut}-" and second["If-Range"] == f'"{size}"'
    assert (tmp_path / "downloads/5b/vqvae.pth.tar").read_bytes() == server.state.files[VQVAE]
    assert any("resuming" in e.message for e in notes)
    assert (tmp_path / "models/5b/vqvae.safetensors").is_file()


def test_a_server_that_ignores_range_is_downloaded_again_from_the_start(server, tmp_path):
    server.state.drop_once[VQVAE] = cut = len(server.state.files[VQVAE]) // 4
    server.state.ignore_range = True
    notes = []
    download_jukebox(_request(server, tmp_path, files=("vqvae",), keep_downloads=True), notes.append)
    assert server.state.gets(VQVAE)[1]["Range"] == f"bytes={cut}-"
    assert (tmp_path / "downloads/5b/vqvae.pth.tar").read_bytes() == server.state.files[VQVAE]
    assert any("ignored the range request" in e.message for e in notes)


def test_a_body_shorter_than_announced_is_never_taken_for_the_file(server, tmp_path):
    size = len(server.state.files[VQVAE])
    server.state.stop_at[VQVAE] = cut = size // 5
    with pytest.raises(DownloadError, match=rf"failed 3 times.*closed after {cut} of {size} bytes.*resume"):
        download_jukebox(_request(server, tmp_path, files=("vqvae",)))
    assert not (tmp_path / "downloads/5b/vqvae.pth.tar").exists()
    assert (tmp_path / "downloads/5b/vqvae.pth.tar.part").stat().st_size == cut
    assert not (tmp_path / "models" / "5b").exists()
    # The retries asked only for the missing bytes.
    assert [h.get("Range") for h in server.state.gets(VQVAE)] == [None] + [f"bytes={cut}-"] * 2


def test_a_file_smaller_than_the_official_weights_is_refused_before_downloading(server, tmp_path):
    request = _request(server, tmp_path, files=("vqvae",), hps_by_name=None)
    with pytest.raises(DownloadError, match=r"offers [\d.]+ [KM]?B for 5b/vqvae\.pth\.tar.*at least 7\.5 MB"):
        download_jukebox(request)
    assert server.state.gets(VQVAE) == []
    assert _nothing_downloaded(tmp_path)


def test_not_enough_disk_space_is_said_before_downloading(server, tmp_path):
    server.state.head_length[VQVAE] = 10**18
    with pytest.raises(DownloadError, match="not enough disk space"):
        download_jukebox(_request(server, tmp_path, files=("vqvae",)))
    assert server.state.gets(VQVAE) == []


def test_a_missing_file_is_a_clear_error(server, tmp_path):
    request = _request(server, tmp_path, files=("vqvae",))
    request = DownloadRequest(**(request.__dict__ | {"settings": DownloadSettings(
        base_url=_url(server, "nowhere"), ids_url=_url(server, "ids"))}))  # fmt: skip
    with pytest.raises(DownloadError, match=r"5b/vqvae\.pth\.tar not found on the server .*HTTP 404"):
        download_jukebox(request)
    assert _nothing_downloaded(tmp_path) and not (tmp_path / "models").exists()


def test_cancel_keeps_the_part_and_the_next_run_fetches_the_rest(server, tmp_path):
    cancel = threading.Event()
    seen = []
    size = len(server.state.files[VQVAE])

    def progress(event):
        if event.stage == "download":
            seen.append(event.done)
            if event.done >= size // 2:
                cancel.set()

    request = _request(server, tmp_path, files=("vqvae",), keep_downloads=True)
    with pytest.raises(DownloadCancelled):
        download_jukebox(request, progress, cancel)
    part = tmp_path / "downloads/5b/vqvae.pth.tar.part"
    kept = part.stat().st_size
    assert kept == seen[-1] and size // 2 <= kept < size
    assert not (tmp_path / "downloads/5b/vqvae.pth.tar").exists()
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())

    download_jukebox(request)
    assert server.state.gets(VQVAE)[-1]["Range"] == f"bytes={kept}-"
    assert (tmp_path / "downloads/5b/vqvae.pth.tar").read_bytes() == server.state.files[VQVAE]


def test_cli_installs_into_models_home_and_adds_files_to_an_installed_model(
    server, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("COCOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COCOMPOSE_JUKEBOX_URL", _url(server, "models"))
    monkeypatch.setenv("COCOMPOSE_JUKEBOX_IDS_URL", _url(server, "ids"))
    hps = tmp_path / "hparams.json"
    hps.write_text(json.dumps(hparams()))
    args = ["download-jukebox", "1b_lyrics", "--hparams", str(hps)]
    assert main([*args, "--only", "vqvae"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^5b/vqvae\.pth\.tar: [\d.]+ [KM]?B of [\d.]+ [KM]?B \(100%\)$", out, re.MULTILINE)
    assert "use it with --model 1b_lyrics" in out
    folder = tmp_path / "home" / "models" / "1b_lyrics"
    assert sorted(p.name for p in folder.iterdir()) == ["download.json", "vqvae.json", "vqvae.safetensors"]

    assert main([*args, "--only", "vqvae", "prior_1b_lyrics"]) == 0
    out = capsys.readouterr().out
    assert "vqvae is already converted" in out
    assert {p.name for p in folder.iterdir()} == {
        "vqvae.json", "vqvae.safetensors", "prior_1b_lyrics.json", "prior_1b_lyrics.safetensors", "ids",
        "download.json",
    }  # fmt: skip
    assert checkpoint.read_settings(folder / "prior_1b_lyrics")["kind"] == "prior"
    assert not list((tmp_path / "home" / "models").glob(".1b_lyrics.converting-*"))


def test_cli_names_the_models_and_files_it_knows(capsys):
    assert main(["download-jukebox", "7b"]) == 2
    assert "unknown model '7b'; choose one of 5b, 5b_lyrics, 1b_lyrics" in capsys.readouterr().err
    assert main(["download-jukebox", "5b", "--only", "prior_1b_lyrics"]) == 2
    assert "5b has no file prior_1b_lyrics; its files are vqvae, prior_5b" in capsys.readouterr().err
    assert main(["download-jukebox", "5b", "--base-url", "ftp://example.org/"]) == 2
    assert "not an http:// or https:// URL" in capsys.readouterr().err


def test_a_second_download_into_the_same_folder_is_refused(server, tmp_path):
    (tmp_path / "downloads").mkdir()
    with open(tmp_path / "downloads" / ".lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="another download is already using"):
            download_jukebox(_request(server, tmp_path, files=("vqvae",)))
    assert server.state.requests == []
    download_jukebox(_request(server, tmp_path, files=("vqvae",)))  # free again once the first is done
    assert (tmp_path / "models/5b/vqvae.json").is_file()


def test_the_terminal_line_gives_bytes_rate_and_time_left():
    from cocompose.download import DownloadProgress
    from cocompose.download_cli import TerminalProgress

    event = DownloadProgress("download", "5b/prior_level_2.pth.tar", 2_500_000_000, 10_000_000_000,
                             25_000_000.0, 300.0)  # fmt: skip
    assert TerminalProgress.describe(event) == (
        "5b/prior_level_2.pth.tar: 2.5 GB of 10.0 GB (25%), 25.0 MB/s, 5 min 00 s left"
    )
    unknown = DownloadProgress("download", "ids/v2_genre_ids.txt", 999)
    assert TerminalProgress.describe(unknown) == "ids/v2_genre_ids.txt: 999 B"


def test_ctrl_c_keeps_the_part_and_says_how_to_resume(server, tmp_path):
    # The line stalls after the first block, so Ctrl-C always lands mid-download, however slow the machine.
    server.state.hold = threading.Event()
    part = tmp_path / "models/.downloads/jukebox/5b/vqvae.pth.tar.part"
    env = {**os.environ, "COCOMPOSE_JUKEBOX_URL": _url(server, "models"), "PYTHONWARNINGS": "ignore"}
    hps = tmp_path / "hparams.json"
    hps.write_text(json.dumps(hparams()))
    command = [sys.executable, "-m", "cocompose.cli", "download-jukebox", "5b", "--only", "vqvae",
               "--models-dir", str(tmp_path / "models"), "--hparams", str(hps)]  # fmt: skip
    # SIGINT as a terminal delivers it: a suite started in the background inherits it ignored.
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint) as run:  # fmt: skip
        deadline = time.monotonic() + 60
        while run.poll() is None and not (part.exists() and part.stat().st_size > 0):
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        try:
            _, err = run.communicate(timeout=60)
        finally:
            server.state.hold.set()
    assert run.returncode == 130, err
    assert "run the same command again to resume" in err
    kept = part.stat().st_size
    assert 0 < kept < len(server.state.files[VQVAE])
    assert not part.with_suffix("").exists() and not (tmp_path / "models" / "5b").exists()


def test_cancel_while_converting_keeps_the_downloads_and_leaves_no_half_model(server, tmp_path):
    cancel = threading.Event()

    def progress(event):
        if event.stage == "convert":
            cancel.set()  # seen before the second file converts

    request = _request(server, tmp_path, files=("vqvae", "prior_5b"))
    with pytest.raises(DownloadCancelled, match="before converting prior_5b"):
        download_jukebox(request, progress, cancel)
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name != ".downloads"] == []
    for rel in ("5b/vqvae.pth.tar", "5b/prior_level_2.pth.tar"):
        assert (tmp_path / "downloads" / rel).read_bytes() == server.state.files[f"/models/{rel}"]

    gets = len([r for r in server.state.requests if r[0] == "GET"])
    result = download_jukebox(request)
    assert len([r for r in server.state.requests if r[0] == "GET"]) == gets and result.downloaded == ()
    assert result.converted == ("vqvae", "prior_5b")
    assert not (tmp_path / "downloads/5b/vqvae.pth.tar").exists()  # ours, so removed once converted
