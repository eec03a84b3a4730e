"""Loading the official OpenAI Jukebox checkpoints (and files in their format)."""

from engine.official.prior_loader import PRIOR_KINDS, load_prior
from engine.official.vqvae_loader import load_vqvae

__all__ = ["PRIOR_KINDS", "load_prior", "load_vqvae"]
