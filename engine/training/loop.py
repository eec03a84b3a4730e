"""The optimisation loop shared by every model: warm-up, clipping, bf16 autocast on GPUs, logging,
checkpoints every N steps and at exit, and a clean stop on Ctrl-C.

A model plugs in through a `Task` (see `vqvae_task`, `prior_task`): it loads the batch of a step,
computes the loss through the (possibly DDP-wrapped) module, and names its metrics.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from engine.training import distributed_setup, reporting, run_state
from engine.training.config import TrainConfig

INTERRUPTED_EXIT = 130  # the shell's code for "stopped by SIGINT"


class Task(Protocol):
    kind: str  # model kind in the project's checkpoint format
    model: nn.Module  # the model being trained, unwrapped (what is saved)
    module: nn.Module  # what runs the forward pass (the model or a loss wrapper around it)

    def batch(self, step: int) -> Any: ...

    def forward(self, module: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]: ...

    def metrics(self, batch: Any, output: Any) -> dict[str, float]: ...

    def log_samples(self, writer, step: int, batch: Any, output: Any) -> None: ...

    def checkpoint_extra(self) -> dict: ...

    def companions(self) -> dict[str, nn.Module]: ...  # trained beside the model, saved with checkpoints


class StopRequest:
    """Set by SIGINT/SIGTERM; the loop finishes the step in flight, saves and exits. A second Ctrl-C
    interrupts at once, as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach only the main thread; a caller on another thread stops it itself
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class LoopSettings:
    train: TrainConfig
    run_dir: Path
    context: distributed_setup.Context
    say: Callable[[str], None]


def make_optimizer(task: Task, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters (the first group) and each companion's (one group
    each, clipped apart: a critic's gradients must not shrink the model's steps)."""
    groups = [[p for p in task.model.parameters() if p.requires_grad]]
    groups += [list(companion.parameters()) for companion in task.companions().values()]
    return torch.optim.AdamW(
        [{"params": params} for params in groups],
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        eps=train.eps,
        weight_decay=train.weight_decay,
    )


def _save(task: Task, settings: LoopSettings, optimizer, step: int) -> None:
    if settings.context.is_main:
        folder = run_state.save(
            settings.run_dir,
            step,
            task.model,
            task.kind,
            optimizer,
            task.checkpoint_extra(),
            task.companions(),
        )
        settings.say(f"saved {folder}")
    distributed_setup.barrier()


def run(task: Task, optimizer: torch.optim.Optimizer, settings: LoopSettings, start_step: int, writer) -> int:
    """Train from `start_step` to `train.steps`; returns 0, or INTERRUPTED_EXIT after a Ctrl-C save."""
    train, context = settings.train, settings.context
    module = distributed_setup.wrap(task.module, context)
    use_bf16 = context.device.type == "cuda"
    progress = reporting.Progress(start_step, train.steps)
    step = start_step
    with StopRequest() as stop:
        while step < train.steps:
            for group in optimizer.param_groups:
                group["lr"] = train.lr_at(step)
            batch = task.batch(step)
            module.train()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, output = task.forward(module, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            loss.backward()
            grad_norm, *companion_norms = (
                float(torch.nn.utils.clip_grad_norm_(group["params"], train.clip))
                for group in optimizer.param_groups
            )
            optimizer.step()
            step += 1

            if context.is_main and (step % train.log_every == 0 or step == train.steps):
                metrics = {"loss": float(loss.detach()), **task.metrics(batch, output)}
                metrics.update(lr=optimizer.param_groups[0]["lr"], grad_norm=grad_norm)
                for name, norm in zip(task.companions(), companion_norms, strict=True):
                    metrics[f"{name}_grad_norm"] = norm
                if not math.isfinite(grad_norm):
                    settings.say(f"warning: gradient norm {grad_norm} at step {step}")
                reporting.log_scalars(writer, metrics, step)
                settings.say(progress.line(step, {"loss": metrics["loss"]}))
            if context.is_main and step % train.sample_every == 0:
                task.log_samples(writer, step, batch, output)

            interrupted = distributed_setup.any_rank(stop.requested)
            if step % train.save_every == 0 or step == train.steps or interrupted:
                _save(task, settings, optimizer, step)
            if interrupted:
                settings.say(f"interrupted: saved step {step}; continue with --resume")
                writer.flush()
                return INTERRUPTED_EXIT
    writer.flush()
    return 0
