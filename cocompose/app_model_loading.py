"""Turning a model folder into a running engine and the summary the app shows of it, under the user's
compute settings (device, precision, CPU threads). Imports torch and the engine only when called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cocompose.app_reports import ModelSummary
from cocompose.models import model_reference
from cocompose.settings import Settings, resolve_compute


def load_engine(folder: Path, top: str | None, settings: Settings) -> tuple[Any, ModelSummary]:
    """(ComposeEngine, ModelSummary) for the model in `folder`; the engine's errors propagate."""
    from engine.api import ComposeEngine

    compute = resolve_compute(settings)
    engine = ComposeEngine.load(folder, top=top, device=compute.device,
                                dtype=_torch_dtype(compute.precision),
                                threads=settings.cpu_threads or None)  # fmt: skip
    device = f"{engine._device()}" + (f" ({compute.note})" if compute.note else "")
    summary = ModelSummary(
        name=engine.name,
        reference=model_reference(folder, engine.bundle.top_name),
        device=device,
        sample_rate=engine.sample_rate,
        codes_per_second=engine.codes_per_second,
        artists=tuple(engine.artists()),
        genres=tuple(engine.genres()),
        can_upsample=engine.can_upsample,
        weights_bytes=engine.weights_bytes(),
        recommended_guidance=engine.recommended_guidance,
        genre_tempi=_genre_tempi(engine),
    )
    return engine, summary


def _genre_tempi(engine) -> tuple[tuple[str, float, int], ...] | None:
    if not engine.has_beat_clock:
        return None
    return tuple((genre, *tempo) for genre in engine.genres() if (tempo := engine.genre_tempo(genre)))


def _torch_dtype(precision: str) -> Any:
    """The priors' compute dtype for a settings precision (None: as saved, float32). Imports torch."""
    import torch

    return {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]
