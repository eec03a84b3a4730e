"""`cocompose download-jukebox MODEL`: fetch the official files, convert them into models_home()/MODEL."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from cocompose.download import (
    BASE_URL_ENV,
    IDS_URL_ENV,
    MODELS,
    OFFICIAL_BASE_URL,
    DownloadCancelled,
    DownloadProgress,
    DownloadRequest,
    default_download_dir,
    human_bytes,
    settings_from_env,
)


def cmd_download_jukebox(args: argparse.Namespace) -> int:
    from cocompose.cli import _load_hparams_file
    from cocompose.models import models_home

    models_dir = Path(args.models_dir) if args.models_dir else models_home()
    request = DownloadRequest(
        model=args.model,
        models_dir=models_dir,
        download_dir=Path(args.download_dir) if args.download_dir else default_download_dir(models_dir),
        files=tuple(args.only) if args.only else None,
        ids_dir=Path(args.ids) if args.ids else None,
        hps_by_name=_load_hparams_file(Path(args.hparams)) if args.hparams else None,
        keep_downloads=args.keep_downloads,
        settings=settings_from_env(args.base_url, args.ids_url),
    )
    try:
        from cocompose.download import download_jukebox

        result = download_jukebox(request, TerminalProgress())
    except (KeyboardInterrupt, DownloadCancelled):
        print(
            "stopped; what was downloaded is kept: run the same command again to resume",
            file=sys.stderr,
            flush=True,
        )
        raise KeyboardInterrupt from None
    if result.converted:
        print(f"use it with --model {args.model} (folder {result.folder})")
    return 0


def add_download_command(commands) -> None:
    parser = commands.add_parser(
        "download-jukebox",
        help="download an official Jukebox model and convert it for Cocompose",
        description=f"Download MODEL's official files (the VQ-VAE, its top prior and both upsamplers) from "
        f"{OFFICIAL_BASE_URL} with resume, then convert them into the models folder ($COCOMPOSE_HOME/"
        "models/MODEL, else ~/.local/share/cocompose/models/MODEL), where --model MODEL finds them. An "
        "interrupted download continues where it stopped; files already downloaded or converted are "
        "skipped. While converting, the 5B models need at least 2 x 19 GB of disk, 1b_lyrics 2 x 12 GB.",
    )
    parser.add_argument("model", metavar="MODEL", help=f"which model: {', '.join(MODELS)}")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="FILE",
        help="fetch only these of the model's files (vqvae, prior_5b, prior_5b_lyrics, prior_1b_lyrics, "
        "upsampler_level_1, upsampler_level_0)",
    )
    parser.add_argument(
        "--base-url",
        help=f"where the official files are (default ${BASE_URL_ENV}, else {OFFICIAL_BASE_URL})",
    )
    parser.add_argument(
        "--ids-url",
        help=f"where the artist/genre id lists are (default ${IDS_URL_ENV}, else the openai/jukebox "
        "repository on GitHub)",
    )
    parser.add_argument("--ids", metavar="DIR", help="use the id lists in DIR instead of downloading them")
    parser.add_argument("--models-dir", metavar="DIR", help="install into DIR/MODEL (default: models folder)")
    parser.add_argument(
        "--download-dir",
        metavar="DIR",
        help="folder for the official files, in their official layout (default: MODELS_DIR/.downloads/"
        "jukebox); official files already there are used as they are",
    )
    parser.add_argument(
        "--keep-downloads",
        action="store_true",
        help="keep the official files after converting them (by default the ones this command "
        "downloaded are deleted once converted)",
    )
    parser.add_argument(
        "--hparams", help="JSON of reference hyper-parameters per file, for files that are not official-size"
    )
    parser.set_defaults(run=cmd_download_jukebox)


class TerminalProgress:
    """Prints reports: notes on their own line, byte counts (with rate and ETA) at most every interval_s,
    on one rewritten line when the output is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = 0.5 if self._tty else 10.0  # a log file gets a line every 10 s
        self._last = 0.0
        self._open_line = False

    def __call__(self, event: DownloadProgress) -> None:
        if event.stage != "download":
            self._end_line()
            print(event.message, file=self.stream, flush=True)
            return
        finished = event.total is not None and event.done >= event.total
        now = time.monotonic()
        if not finished and now - self._last < self.interval_s:
            return
        self._last = now
        line = self.describe(event)
        if self._tty:
            print("\r" + line.ljust(79), end="", file=self.stream, flush=True)
            self._open_line = True
            if finished:
                self._end_line()
        else:
            print(line, file=self.stream, flush=True)

    @staticmethod
    def describe(event: DownloadProgress) -> str:
        size = (
            f"{human_bytes(event.done)} of {human_bytes(event.total)}"
            if event.total is not None
            else human_bytes(event.done)
        )
        percent = f" ({event.done / event.total:.0%})" if event.total else ""
        rate = f", {human_bytes(event.rate)}/s" if event.rate else ""
        eta = f", {_duration(event.eta_s)} left" if event.eta_s is not None else ""
        return f"{event.file}: {size}{percent}{rate}{eta}"

    def _end_line(self) -> None:
        if self._open_line:
            print(file=self.stream, flush=True)
            self._open_line = False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
