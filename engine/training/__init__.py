"""Training entry points for every model: `train(TrainRequest(...))`, driven by `cocompose train`."""

from engine.training.entry import KINDS, TrainRequest, train

__all__ = ["KINDS", "TrainRequest", "train"]
