"""What a run tells its user: a progress line with rate and ETA, and TensorBoard logs when the
optional `tensorboard` package is installed (`pip install cocompose[train]`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch


class NoWriter:
    """Stands in for SummaryWriter when TensorBoard is absent (or on ranks other than 0)."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def add_audio(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_writer(log_dir: Path, say: Callable[[str], None]):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("TensorBoard logging is off: install the 'tensorboard' package (pip install cocompose[train])")
        return NoWriter()
    return SummaryWriter(log_dir=str(log_dir))


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Rate over the steps done in this process (a resumed run does not count the earlier ones)."""

    def __init__(self, first_step: int, last_step: int):
        self.first_step = first_step
        self.last_step = last_step
        self.started = time.monotonic()

    def line(self, step: int, metrics: dict[str, float]) -> str:
        done = step - self.first_step
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.last_step - step) / rate if rate > 0 else float("inf")
        eta_text = format_duration(eta) if eta != float("inf") else "?"
        shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        return f"step {step}/{self.last_step} {shown} | {rate:.2f} steps/s | ETA {eta_text}"


def log_scalars(writer, metrics: dict[str, float], step: int, prefix: str = "train/") -> None:
    for name, value in metrics.items():
        writer.add_scalar(prefix + name, value, step)


def log_audio(writer, tag: str, audio: torch.Tensor, step: int, sample_rate: int) -> None:
    writer.add_audio(tag, audio.detach().float().clamp(-1, 1).cpu(), step, sample_rate=sample_rate)
