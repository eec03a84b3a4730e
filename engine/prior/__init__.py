"""Jukebox priors: upsamplers and top-level priors with an explicit KV cache.

Load official checkpoints with `engine.official.prior_loader.load_prior`.
"""
