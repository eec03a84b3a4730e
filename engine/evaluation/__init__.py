"""Held-out measurements of a model folder for its model card (`cocompose evaluate`).

`evaluate_model(folder, data_dir)` returns a frozen `ModelCard` with the VQ-VAE's spectral convergence
and codebook usage per level and the priors' held-out bits per token; `report` turns it into a text
table or JSON.
"""

from engine.evaluation.report import LevelMetrics, ModelCard, PriorMetrics
from engine.evaluation.run import evaluate_model

__all__ = ["LevelMetrics", "ModelCard", "PriorMetrics", "evaluate_model"]
