"""Training data for the engine: corpora the default model learns from."""
