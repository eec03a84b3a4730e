"""Start the app: parse the command line, check there is somewhere to draw, show the main window."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from cocompose.audio_exit import exit_without_waiting_on_audio
from cocompose.audio_io import audio_status
from ui.main_window import DEFAULT_MODEL, MainWindow

EXIT_NO_DISPLAY = 2
EXIT_SCREENSHOT_FAILED = 1
SCREENSHOT_DEFAULT_QUIT_MS = 1000

NO_DISPLAY_MESSAGE = """\
cocompose: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so there is nowhere to open the window.
Run it in a desktop session, or under a virtual X server:
    xvfb-run -a python main.py
or without any display at all:
    QT_QPA_PLATFORM=offscreen python main.py"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py", description="Co-compose music with Jukebox.")
    parser.add_argument(
        "--quit-after",
        metavar="MS",
        type=_milliseconds,
        help="close the window after MS milliseconds (for smoke tests and screenshots)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PATH",
        type=_path_in_existing_folder,
        help=f"save an image of the window to PATH (.png) just before quitting; "
        f"implies --quit-after {SCREENSHOT_DEFAULT_QUIT_MS} unless given",
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="model folder to load (default: the embedded default model, assets/default-model)",
    )
    parser.add_argument("project", nargs="?", type=Path, help="a song (.cocompose) to open")
    args = parser.parse_args(argv)
    if args.screenshot is not None and args.quit_after is None:
        args.quit_after = SCREENSHOT_DEFAULT_QUIT_MS
    return args


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of milliseconds >= 0, got {text!r}")
    return value


def _path_in_existing_folder(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist")
    return path


def has_display() -> bool:
    """Whether Qt has a platform to draw on; without one it aborts the process (exit 134)."""
    if not sys.platform.startswith("linux"):
        return True  # Windows and macOS always have their native platform
    return any(os.environ.get(name) for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_NO_DISPLAY

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Cocompose")
    model = args.model if args.model is not None else DEFAULT_MODEL
    window = MainWindow(audio_status(), model=model, offer_reopen=args.project is None)
    window.show()
    if args.project is not None:
        window.open_project(args.project)

    screenshot_failed = False

    def close_window() -> None:
        nonlocal screenshot_failed
        if args.screenshot is not None and not window.grab().save(str(args.screenshot)):
            print(f"cocompose: could not write the screenshot to {args.screenshot}", file=sys.stderr)
            screenshot_failed = True
        window.close()

    if args.quit_after is not None:
        QTimer.singleShot(args.quit_after, close_window)
    exit_code = app.exec()
    exit_code = EXIT_SCREENSHOT_FAILED if screenshot_failed else exit_code
    exit_without_waiting_on_audio(exit_code)  # the window has closed the song; only PortAudio is left
    return exit_code
