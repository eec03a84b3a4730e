"""What the service can be asked to do: frozen requests, captured on the caller's thread (STYLE habit 14).

Interactive requests (new branches, previews) jump ahead of background ones (upsampling); a running
background job steps aside at its next window boundary when an interactive one is waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cocompose.song import Conditioning

MAX_BRANCHES = 64
MAX_SECONDS = 3600.0
MAX_SEED = 2**63 - 1
MAX_GUIDANCE = (
    10.0  # as the engine allows (engine.prior.sampler.MAX_GUIDANCE; cocompose imports no torch here)
)


class Priority(IntEnum):
    INTERACTIVE = 0
    BACKGROUND = 1


@dataclass(frozen=True)
class SamplingParams:
    """How top-level codes are drawn (the store's Sampling minus the seed)."""

    temperature: float = 0.98
    top_k: int = 0
    top_p: float = 0.0
    guidance: float = 0.0  # label guidance strength (engine.prior.sampler); models recommend one

    def __post_init__(self) -> None:
        if not 0.0 < self.temperature <= 10.0:
            raise ValueError(f"temperature must be in (0, 10], got {self.temperature}")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"need top_k >= 0 and top_p in [0, 1], got {self.top_k}, {self.top_p}")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ValueError(f"label guidance must be in [0, {MAX_GUIDANCE:g}], got {self.guidance}")


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"a seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    return seed


def check_seconds(seconds: float, what: str = "seconds") -> float:
    if not 0.0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{what} must be more than 0 and at most {MAX_SECONDS:g}, got {seconds:g}")
    return seconds


@dataclass(frozen=True)
class GenerateRequest:
    """N continuations of `parent_id`, one seed each (branch i gets seeds[i])."""

    parent_id: int
    seconds: float
    seeds: tuple[int, ...]
    sampling: SamplingParams = SamplingParams()
    previews: bool = True  # queue a preview of every finished branch
    # Another voice for the new takes (a duet from the parent's end on). The takes carry it, so they are
    # upsampled with what they were sampled with; None: the conditioning in force at the parent.
    conditioning: Conditioning | None = None

    kind = "generate"
    priority = Priority.INTERACTIVE

    def __post_init__(self) -> None:
        check_seconds(self.seconds)
        if not 1 <= len(self.seeds) <= MAX_BRANCHES:
            raise ValueError(f"ask for 1 to {MAX_BRANCHES} branches, not {len(self.seeds)}")
        for seed in self.seeds:
            check_seed(seed)

    @classmethod
    def branches(cls, parent_id: int, n: int, seconds: float, seed: int, **kwargs) -> GenerateRequest:
        """n branches with seeds seed, seed + 1, ...: branch i is reproducible from seed + i alone."""
        if not 1 <= n <= MAX_BRANCHES:
            raise ValueError(f"ask for 1 to {MAX_BRANCHES} branches, not {n}")
        check_seed(seed)
        return cls(parent_id, seconds, tuple(seed + i for i in range(n)), **kwargs)


@dataclass(frozen=True)
class PreviewRequest:
    """Decode a take with the fast top-level decoder and cache it in the project."""

    node_id: int

    kind = "preview"
    priority = Priority.INTERACTIVE


@dataclass(frozen=True)
class UpsampleRequest:
    """Render root..leaf_id (None: the current song), or [start_s, end_s) of it, through both upsamplers."""

    leaf_id: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    seed: int = 0

    kind = "upsample"
    priority = Priority.BACKGROUND

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.start_s is not None and self.start_s < 0:
            raise ValueError(f"a range cannot start before 0 s, got {self.start_s:g}")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"a range must end after it starts, got {self.start_s:g}:{self.end_s:g}")


@dataclass(frozen=True)
class RenderRequest:
    """Audio of root..leaf_id (None: the current song) or [start_s, end_s) of it: the fast preview, or
    the upsampled render (upsampling whatever windows are still missing first)."""

    leaf_id: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    quality: str = "preview"  # "preview" | "upsampled"
    seed: int = 0

    kind = "render"

    def __post_init__(self) -> None:
        if self.quality not in ("preview", "upsampled"):
            raise ValueError(f"quality must be 'preview' or 'upsampled', not {self.quality!r}")
        UpsampleRequest(self.leaf_id, self.start_s, self.end_s, self.seed)  # the same checks

    @property
    def priority(self) -> Priority:
        return Priority.INTERACTIVE if self.quality == "preview" else Priority.BACKGROUND
