"""Loading the official OpenAI Jukebox checkpoints (and files in their format)."""

from engine.official.vqvae_loader import load_vqvae

__all__ = ["load_vqvae"]
