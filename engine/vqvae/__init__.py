"""The Jukebox music VQ-VAE."""

from engine.vqvae.config import OFFICIAL, PRESETS, TINY, VQVAEConfig
from engine.vqvae.model import VQVAE, VQVAEOutput

__all__ = ["OFFICIAL", "PRESETS", "TINY", "VQVAE", "VQVAEConfig", "VQVAEOutput"]
