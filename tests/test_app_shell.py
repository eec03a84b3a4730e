"""The app shell: the main window in-process with pytest-qt, and `python main.py` as a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QMessageBox

from cocompose.audio_io import AudioStatus
from tests.child_process import run_or_show_stacks
from ui.main_window import MainWindow

REPO_ROOT = Path(__file__).resolve().parents[1]
PLAYING = AudioStatus(
    available=True,
    reason="",
    default_output="system",
    default_input="system",
    host_api="JACK Audio Connection Kit",
    output_channels=2,
    input_channels=2,
    sample_rate=48_000.0,
)
SILENT = AudioStatus(available=False, reason="PortAudio library not found")


@pytest.fixture(autouse=True)
def no_model_and_own_config(tmp_path, monkeypatch):
    """No default model (so the window explains how to get one) and no real user's recent projects."""
    monkeypatch.setattr("cocompose.app_session.DEFAULT_MODEL", tmp_path / "no-model")
    monkeypatch.setenv("COCOMPOSE_CONFIG_DIR", str(tmp_path / "config"))


def open_window(qtbot, audio: AudioStatus = SILENT) -> MainWindow:
    window = MainWindow(audio)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    return window


def run_main(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = env if env is not None else {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return run_or_show_stacks("main.py", [sys.executable, "main.py", *args], env, REPO_ROOT, timeout=60)


# --- in-process ---------------------------------------------------------------------------------------


@pytest.mark.qt
@pytest.mark.parametrize(
    ("audio", "shown"),
    [
        (PLAYING, "Audio: system (JACK Audio Connection Kit, 2 in / 2 out)"),
        (SILENT, "Audio unavailable: PortAudio library not found"),
    ],
)
def test_the_window_is_titled_and_shows_the_audio_status(qtbot, audio, shown):
    window = open_window(qtbot, audio)
    assert window.windowTitle() == "Cocompose"
    assert window.isVisible()
    assert window.statusBar().findChild(QLabel, "audioStatus").text() == shown


@pytest.mark.qt
def test_with_no_model_the_window_opens_and_says_how_to_get_one(qtbot):
    window = open_window(qtbot)
    info = window.findChild(QLabel, "placeholder")
    qtbot.waitUntil(lambda: "train-default" in info.text(), timeout=5000)
    assert info.isVisible()
    assert window.findChild(QMessageBox, "errorBox") is None  # said in the window, not thrown at the user
    assert not window.generate_panel.generate_button.isEnabled()


@pytest.mark.qt
def test_ctrl_q_closes_the_window(qtbot):
    window = open_window(qtbot)
    with qtbot.waitActive(window):  # a window shortcut fires only in the active window
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)


@pytest.mark.qt
def test_file_quit_and_help_about_are_in_the_menus(qtbot):
    window = open_window(qtbot)
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    assert set(menus) == {"&File", "&Edit", "&Model", "&Play", "&Help"}
    assert {a.text() for a in menus["&Play"].actions()} == {"Play", "Hear the &Upsampled Render"}

    about = next(action for action in menus["&Help"].actions() if "About" in action.text())
    about.trigger()
    box = window.findChild(QMessageBox, "aboutBox")
    qtbot.waitUntil(box.isVisible, timeout=2000)
    assert "Cocompose" in box.text() and "Jukebox" in box.text()
    box.accept()

    quit_action = next(action for action in menus["&File"].actions() if "Quit" in action.text())
    quit_action.trigger()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)


# --- as a user runs it --------------------------------------------------------------------------------


@pytest.mark.qt
def test_main_py_closes_itself_and_exits_cleanly():
    result = run_main("--quit-after", "500")
    assert result.returncode == 0, result.stderr


@pytest.mark.qt
def test_main_py_saves_a_screenshot_of_the_window(tmp_path):
    shot = tmp_path / "window.png"
    result = run_main("--quit-after", "300", "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr

    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    image = QImage(str(shot))
    assert image.width() >= 400 and image.height() >= 300
    # Text was drawn (menus, placeholder, status bar), so the image is not one flat colour.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert len(colours) > 2


def test_main_py_without_a_display_explains_what_to_do():
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    result = run_main("--quit-after", "0", env=env)
    assert result.returncode == 2, result.stderr  # not Qt's abort (134)
    assert "no display found" in result.stderr
    assert "QT_QPA_PLATFORM=offscreen" in result.stderr
    assert "xvfb-run" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--quit-after", "soon"], "whole number of milliseconds"),
        (["--quit-after", "-5"], "whole number of milliseconds"),
        (["--screenshot", "/no/such/folder/shot.png"], "does not exist"),
    ],
)
def test_main_py_rejects_bad_options_with_a_clear_message(args, complaint):
    result = run_main(*args)
    assert result.returncode == 2
    assert complaint in result.stderr
