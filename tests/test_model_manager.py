"""The model manager on a real offscreen event loop: the default model's row, installed and added models,
and official downloads from a loopback HTTP server serving the fixture's official-format files (the
server of tests/test_download.py), with progress arriving while a timer keeps firing, cancel keeping the
.part, and failures shown in the dialog."""

from __future__ import annotations

import errno
import itertools
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from cocompose.download import MODELS, DownloadRequest, DownloadSettings, default_download_dir
from cocompose.fetch import human_bytes as fetch_human_bytes
from cocompose.model_catalog import (
    CatalogError,
    add_model_folder,
    describe_folder,
    explain_failure,
    human_bytes,
)
from tests.compose_model import write_tiny_bundle
from tests.reference import hparams
from tests.test_download import VQVAE, _url, server  # noqa: F401  (server is a fixture)
from ui.model_manager import ModelManager

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]

TICK_MS = 20
MAX_GAP_S = 0.5  # generous: a training run shares these two cores


def _request_factory(httpd, models: Path, files: tuple[str, ...] | None = None, base: str = ""):
    def make(model: str) -> DownloadRequest:
        settings = DownloadSettings(base_url=base or _url(httpd, "models"), ids_url=_url(httpd, "ids"),
                                    retries=1, backoff_s=0.01, timeout_s=10, chunk_bytes=1 << 12)  # fmt: skip
        return DownloadRequest(model, models, default_download_dir(models), files=files,
                               hps_by_name=hparams()["resolved_hps"], keep_downloads=True,
                               settings=settings)  # fmt: skip

    return make


def _dialog(qtbot, models: Path, default_dir: Path, **kwargs) -> ModelManager:
    dialog = ModelManager(models_dir=models, default_dir=default_dir, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.catalog is not None, timeout=20_000)  # the first scan imports torch
    return dialog


def _rescanned(qtbot, dialog: ModelManager):
    with qtbot.waitSignal(dialog.catalogChanged, timeout=10_000) as blocker:
        dialog.refresh()
    return blocker.args[0]


def _finish(qtbot, dialog: ModelManager, start, timeout_ms: int = 60_000) -> tuple[str, str]:
    with qtbot.waitSignal(dialog.taskFinished, timeout=timeout_ms) as blocker:
        start()
    qtbot.waitUntil(lambda: not dialog.busy)
    return tuple(blocker.args)


def _row_texts(dialog: ModelManager, section: int) -> list[list[str]]:
    top = dialog.tree.topLevelItem(section)
    return [[top.child(r).text(c) for c in range(5)] for r in range(top.childCount())]


def test_the_catalog_reads_model_folders_without_torch(tmp_path):
    """The GUI imports these modules and calls describe_folder on its own thread: none may load torch."""
    folder = write_tiny_bundle(tmp_path / "tiny")
    code = textwrap.dedent(f"""
        import sys
        import cocompose.model_catalog as catalog, cocompose.settings, ui.model_manager, ui.settings_dialog
        entry = catalog.describe_folder({str(folder)!r})
        assert entry.usable and entry.top_priors == ("tiny",) and entry.sample_rate == 22050, entry
        catalog.default_entry({str(tmp_path / "none")!r})
        print("torch" in sys.modules)
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


def test_sizes_are_written_as_the_downloader_writes_them():
    for n in (0, 999, 1000, 12_345, 999_999, 7_515_916, 3_940_921_344, 19_341_190_604, 10**15):
        assert human_bytes(n) == fetch_human_bytes(n)
    assert human_bytes(None) == "?"


def test_a_folder_is_described_by_what_it_holds(tmp_path):
    folder = write_tiny_bundle(tmp_path / "plain", manifest=False)
    entry = describe_folder(folder)
    assert entry.usable and entry.top_priors == ("tiny",) and entry.upsamplers and entry.sample_rate == 22050
    assert entry.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    (folder / "upsampler_level_0.safetensors").unlink()
    assert describe_folder(folder).problem == "upsampler_level_0.safetensors is missing"
    (folder / "vqvae.json").unlink()
    assert describe_folder(folder).problem.startswith("no VQ-VAE (vqvae.json)")
    (folder / "bundle.json").write_text("{not json")
    assert "not a readable Cocompose bundle manifest" in describe_folder(folder).problem


def test_the_default_row_says_how_to_build_it_and_is_usable_once_built(qtbot, tmp_path):
    missing = tmp_path / "assets" / "default-model"
    dialog = _dialog(qtbot, tmp_path / "models", missing)
    assert _row_texts(dialog, 0)[0][:2] == ["default", "not built"]
    assert dialog.select("default", "default")
    details = dialog.details.text()
    assert "cocompose train-default --install" in details and str(missing) in details
    assert not dialog.use_button.isEnabled()
    assert not missing.exists()  # the dialog only looks

    write_tiny_bundle(missing)
    _rescanned(qtbot, dialog)
    size = human_bytes(describe_folder(missing).size_bytes)
    assert _row_texts(dialog, 0)[0] == ["default", "ready", size, "tiny", "22050 Hz"]
    assert dialog.select("default", "default") and dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [missing]


def test_installed_and_added_models_appear_in_the_list(qtbot, tmp_path):
    models = tmp_path / "models"
    write_tiny_bundle(models / "mine")
    source = write_tiny_bundle(tmp_path / "elsewhere" / "band", manifest=False)
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    dialog = _dialog(qtbot, models, tmp_path / "no-default")
    assert [row[:2] for row in _row_texts(dialog, 1)] == [["mine", "ready"]]
    assert [row[0] for row in _row_texts(dialog, 2)] == list(MODELS)
    assert dialog.use_button.isEnabled() and dialog.selected().name == "mine"  # the first usable row

    outcome, message = _finish(qtbot, dialog, lambda: dialog.add_folder(source, link=False))
    assert outcome == "done" and message.startswith(f"Copied {source} into {models / 'band'}")
    qtbot.waitUntil(lambda: [r[0] for r in _row_texts(dialog, 1)] == ["band", "mine"])
    assert {p.name: p.read_bytes() for p in (models / "band").iterdir()} == before
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before  # the original is untouched
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no staging left

    outcome, message = _finish(
        qtbot, dialog, lambda: dialog.add_folder(source, link=True, name="band-linked")
    )
    assert outcome == "done" and "not copied" in message
    assert (models / "band-linked").resolve() == source.resolve()
    qtbot.waitUntil(lambda: ["band-linked", "ready (linked)"] in [r[:2] for r in _row_texts(dialog, 1)])
    dialog.select("installed", "band-linked")
    assert f"A link to {source.resolve()}" in dialog.details.text()
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        dialog.use_selected()
    assert chosen.args == [models / "band-linked"]

    outcome, message = _finish(qtbot, dialog, lambda: dialog.add_folder(source, link=False))
    assert outcome == "failed" and message == dialog.error_label.text()
    assert f"a model named 'band' is already installed ({models / 'band'})" in message
    outcome, message = _finish(qtbot, dialog, lambda: dialog.add_folder(tmp_path / "elsewhere", link=True))
    assert outcome == "failed" and "is not a model folder Cocompose can use: no VQ-VAE" in message


def test_a_cancelled_copy_adds_nothing(tmp_path):
    import threading

    source = write_tiny_bundle(tmp_path / "src")
    cancel = threading.Event()

    def progress(event):
        if event.stage == "copy":
            cancel.set()

    from cocompose.model_catalog import AddCancelled

    with pytest.raises(AddCancelled):
        add_model_folder(source, tmp_path / "models", progress=progress, cancel=cancel)
    assert list((tmp_path / "models").iterdir()) == []
    with pytest.raises(CatalogError, match="reserved"):
        add_model_folder(source, tmp_path / "models", name="5b")


def test_download_converts_with_progress_while_the_event_loop_turns(qtbot, server, tmp_path):  # noqa: F811
    server.state.pause_s = 0.003  # about a second for the 5b files: long enough to watch it progress
    models = tmp_path / "models"
    dialog = _dialog(qtbot, models, tmp_path / "no-default", make_request=_request_factory(server, models))
    assert dialog.select("official", "5b") and dialog.download_button.isEnabled()
    assert not dialog.use_button.isEnabled()
    ticks: list[float] = []
    seen: list[int] = []
    texts: set[str] = set()

    def tick() -> None:
        ticks.append(time.monotonic())
        seen.append(dialog.progress.value())
        texts.add(dialog.progress_label.text())

    timer = QTimer(interval=TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    try:
        outcome, message = _finish(qtbot, dialog, dialog.download_button.click)
    finally:
        timer.stop()
    assert outcome == "done" and message == f"5b is ready in {models / '5b'}", message
    # The bar fills while the files download (the whole download's bytes), then shows "busy" (-1)
    # while converting, which reports no fraction (the final download report may share a GUI turn
    # with the first conversion note, so the last value seen before "busy" can fall short of full).
    downloading = seen[: seen.index(-1)] if -1 in seen else seen
    assert len({v for v in downloading if 0 < v < 1000}) >= 5, f"progress seen by the GUI: {downloading}"
    assert downloading == sorted(downloading) and downloading[-1] > 900
    assert -1 in seen and any(t.startswith("converting 5b/prior_level_2.pth.tar") for t in texts)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < MAX_GAP_S, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    lines = [t for t in texts if t.startswith("5b/") and " of " in t]
    assert lines and all("%" in t for t in lines)  # bytes of the file and the percentage, as the CLI
    assert any("MB/s" in t and " left" in t for t in lines)  # with the rate and the time left
    assert any("in all" in t for t in lines)  # and the whole download's bytes

    qtbot.waitUntil(lambda: _row_texts(dialog, 2)[0][1] == "ready")
    assert dialog.select("official", "5b") and dialog.use_button.isEnabled()
    assert not dialog.download_button.isEnabled()
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [models / "5b"]
    assert describe_folder(models / "5b").top_priors == ("5b",)
    # The other 5B model shares the VQ-VAE and upsamplers: only its prior is left to fetch.
    five_b, lyrics = dialog.catalog.official[:2]
    assert lyrics.name == "5b_lyrics" and lyrics.notes and lyrics.download_bytes < five_b.full_bytes


def test_cancel_keeps_the_part_and_download_resumes_it(qtbot, server, tmp_path):  # noqa: F811
    server.state.pause_s = 0.02
    size = len(server.state.files[VQVAE])
    models = tmp_path / "models"
    part = default_download_dir(models) / "5b" / "vqvae.pth.tar.part"
    dialog = _dialog(qtbot, models, tmp_path / "no-default",
                     make_request=_request_factory(server, models, files=("vqvae",)))  # fmt: skip
    dialog.select("official", "5b")
    dialog.download_button.click()
    assert dialog.busy and dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0 and part.exists(), timeout=20_000)
    outcome, message = _finish(qtbot, dialog, dialog.cancel_button.click)
    assert outcome == "cancelled" and "kept in" in message and "press Download again" in message
    kept = part.stat().st_size
    assert 0 < kept < size
    assert not (models / "5b").exists()

    qtbot.waitUntil(lambda: dialog.catalog.official[0].partial_bytes == kept)
    dialog.select("official", "5b")
    assert dialog.download_button.text() == "Resume &download" and dialog.download_button.isEnabled()
    assert f"{human_bytes(kept)} downloaded, resumes" in _row_texts(dialog, 2)[0][1]

    server.state.pause_s = 0.0
    outcome, _ = _finish(qtbot, dialog, dialog.download_button.click)
    assert outcome == "done"
    assert server.state.gets(VQVAE)[-1]["Range"] == f"bytes={kept}-"
    assert part.with_suffix("").read_bytes() == server.state.files[VQVAE]
    qtbot.waitUntil(lambda: "1 of 4 files converted" in _row_texts(dialog, 2)[0][1])


def test_failures_are_shown_in_the_dialog_and_it_stays_usable(qtbot, server, tmp_path):  # noqa: F811
    models = tmp_path / "models"
    dialog = _dialog(qtbot, models, tmp_path / "no-default",
                     make_request=_request_factory(server, models, files=("vqvae",)))  # fmt: skip
    server.state.head_length[VQVAE] = 10**18
    dialog.select("official", "5b")
    outcome, message = _finish(qtbot, dialog, dialog.download_button.click)
    assert outcome == "failed" and "not enough disk space" in dialog.error_label.text()
    assert dialog.download_button.isEnabled() and not dialog.progress.isVisible()

    # Nothing listens on the port: the connection is refused, retried, and the dialog says so.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/models/"
    dialog._make_request = _request_factory(server, models, files=("vqvae",), base=dead)
    outcome, message = _finish(qtbot, dialog, dialog.download_button.click)
    assert outcome == "failed" and "Connection refused" in message, message
    assert "press Download again to resume" in message and message == dialog.error_label.text()
    assert dialog.download_button.isEnabled()


def test_a_full_disk_is_explained():
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/models/.downloads/x.part")
    text = explain_failure(exc)
    assert text.startswith("the disk is full (/data/models/.downloads/x.part): the download stopped")
    assert "kept" in text


def test_closing_keeps_a_download_going_and_shutdown_stops_it_keeping_the_part(qtbot, server, tmp_path):  # noqa: F811
    server.state.pause_s = 0.02
    models = tmp_path / "models"
    part = default_download_dir(models) / "5b" / "vqvae.pth.tar.part"
    dialog = _dialog(qtbot, models, tmp_path / "no-default",
                     make_request=_request_factory(server, models, files=("vqvae",)))  # fmt: skip
    dialog.select("official", "5b")
    dialog.download_button.click()
    qtbot.waitUntil(lambda: part.exists() and part.stat().st_size > 0, timeout=20_000)
    dialog.close()
    assert not dialog.isVisible() and dialog.busy
    grown = part.stat().st_size
    qtbot.waitUntil(lambda: part.stat().st_size > grown, timeout=10_000)  # still downloading, unseen
    dialog.show()
    qtbot.waitUntil(lambda: dialog.progress_label.text().startswith("5b/vqvae.pth.tar: "))

    assert dialog.shutdown(timeout_s=10)  # what the app calls when it quits
    kept = part.stat().st_size
    assert 0 < kept < len(server.state.files[VQVAE]) and not (models / "5b").exists()
    qtbot.waitUntil(lambda: not dialog.busy)
    assert part.stat().st_size == kept
