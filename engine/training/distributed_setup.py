"""All process-group setup and teardown for training, in one place; everything is a no-op in a single
process.

`torchrun --nproc_per_node N -m cocompose.cli train ...` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `setup()` reads them and joins the group (nccl on GPUs, gloo on CPU).
Rank 0 alone writes checkpoints and logs. The per-tensor collectives the models need (the codebook's
EMA statistics) live in `engine.distributed`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine import distributed


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | None = None) -> Context:
    """Join the process group that torchrun describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world > 1 and not distributed.is_distributed():
        backend = "nccl" if target.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    return Context(distributed.rank(), distributed.world_size(), target)


def teardown() -> None:
    if distributed.is_distributed():
        dist.destroy_process_group()


def wrap(model: nn.Module, context: Context) -> nn.Module:
    """DistributedDataParallel around `model` when there are several processes, else `model` itself.

    Buffers are synced from rank 0 once, at wrapping, and not before every forward: the codebooks keep
    their EMA state in step by all-reducing it themselves.
    """
    if context.world_size == 1:
        return model
    ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (all ranks must stop at the same step, or the ones still
    training would wait forever in the next all-reduce)."""
    if not distributed.is_distributed():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier() -> None:
    if distributed.is_distributed():
        dist.barrier()
