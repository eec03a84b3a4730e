"""Distributed helpers that are no-ops in a single process, so model code calls them unconditionally."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def all_reduce_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes in place (EMA codebook statistics) and return it."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Make every process hold rank `src`'s copy (random codebook restarts must agree)."""
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor
