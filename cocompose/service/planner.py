"""How long and how much memory N branches of S seconds will take, before the musician asks for them.

Memory: every branch holds a KV cache of the top prior (keys and values of every layer over one
context), on top of the weights. Time: the top prior draws one code per branch per step; a batch that
fits in memory draws for all its branches in one step, so time = steps x batches x measured seconds per
step (measured by the service on the last generation; unknown before the first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cocompose.service.requests import check_seconds


@dataclass(frozen=True)
class Plan:
    branches: int
    seconds: float
    tokens: int  # codes drawn in all
    batch_size: int  # branches per prior call that fit in memory_budget
    memory_bytes: int  # weights + KV caches of one batch
    est_seconds: float | None  # None until a rate has been measured
    fits: bool  # False when not even one branch fits the budget


def plan_generation(
    engine,
    branches: int,
    seconds: float,
    *,
    seconds_per_step: float | None = None,
    memory_budget: int | None = None,
    max_batch: int | None = None,
) -> Plan:
    """Plan N branches x S seconds. memory_budget (bytes free for the models; None: no limit) bounds the
    batch; max_batch is what an earlier out-of-memory error left the service at."""
    check_seconds(seconds)
    if branches < 1:
        raise ValueError(f"ask for at least one branch, not {branches}")
    steps = max(1, round(seconds * engine.codes_per_second))
    weights, per_branch = engine.weights_bytes(), engine.memory_per_branch()
    batch = branches if max_batch is None else min(branches, max_batch)
    fits = True
    if memory_budget is not None:
        room = (memory_budget - weights) // per_branch
        fits = room >= 1
        batch = max(1, min(batch, room))
    batches = math.ceil(branches / batch)
    estimate = None if seconds_per_step is None else steps * batches * seconds_per_step
    return Plan(branches, seconds, steps * branches, batch, weights + batch * per_branch, estimate, fits)
