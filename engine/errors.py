"""Errors the engine raises for bad input: each one names the problem in words a user can act on."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: missing, damaged, unsafe, or not the kind of model asked for."""


class AudioInputError(ValueError):
    """Audio handed to a model has the wrong shape, type or values."""
