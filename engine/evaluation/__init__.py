"""Held-out measurements of a model folder for its model card (`cocompose evaluate`).

`evaluate_model(folder, data_dir)` returns a frozen `ModelCard` with the VQ-VAE's spectral convergence
and codebook usage per level and the priors' held-out bits per token; `report` turns it into a text
table or JSON. `evaluate_conditioning(engine, ConditioningConfig())` measures whether generated songs
carry the conditioned artist and genre, and the new artist after a mid-song change
(`conditioning_report.ConditioningReport`).
"""

from engine.evaluation.conditioning import ConditioningConfig, evaluate_conditioning
from engine.evaluation.conditioning_report import ConditioningReport
from engine.evaluation.report import LevelMetrics, ModelCard, PriorMetrics
from engine.evaluation.run import evaluate_model

__all__ = [
    "ConditioningConfig",
    "ConditioningReport",
    "LevelMetrics",
    "ModelCard",
    "PriorMetrics",
    "evaluate_conditioning",
    "evaluate_model",
]
