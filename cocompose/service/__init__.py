"""The engine service: one worker thread that owns the models and runs generation, previews, upsampling
and rendering for a project, with priorities, progress, cancellation and resumption. Qt-free; the app
forwards its events to the GUI thread. See docs/SERVICE.md."""

from cocompose.service.jobs import JobCancelled, JobEvent, JobHandle, Preempted
from cocompose.service.planner import Plan, plan_generation
from cocompose.service.requests import (
    GenerateRequest,
    PreviewRequest,
    Priority,
    RenderRequest,
    SamplingParams,
    UpsampleRequest,
)


def __getattr__(name: str):
    # The worker imports torch (through the engine); loading it only when asked keeps light commands fast.
    if name == "ComposeService":
        from cocompose.service.worker import ComposeService

        return ComposeService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ComposeService",
    "GenerateRequest",
    "JobCancelled",
    "JobEvent",
    "JobHandle",
    "Plan",
    "Preempted",
    "PreviewRequest",
    "Priority",
    "RenderRequest",
    "SamplingParams",
    "UpsampleRequest",
    "plan_generation",
]
