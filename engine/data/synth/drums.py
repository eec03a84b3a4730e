"""Synthesised drum kit and the placing of genre patterns on the timeline.

Each drum is made once per song from that song's random generator (so two songs' snares differ a
little, like two recordings) and then added at every hit.
"""

from __future__ import annotations

import numpy as np

from engine.data.synth import dsp
from engine.data.synth.events import Hit

DRUM_NAMES = ("kick", "snare", "clap", "hat", "open_hat", "crash")


def _noise_burst(rng: np.random.Generator, n: int, decay_s: float, sr: int, highpass_steps: int):
    """White noise with an exponential decay; each difference step tilts it ~6 dB/octave brighter."""
    noise = rng.standard_normal(n + highpass_steps)
    for _ in range(highpass_steps):
        noise = np.diff(noise)
    return noise * np.exp(-np.arange(n) / (decay_s * sr)) / (2.0**highpass_steps) ** 0.5


def make_kit(rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    t_kick = np.arange(int(0.35 * sr)) / sr
    kick_freq = 48.0 + 110.0 * np.exp(-t_kick / 0.03)  # the pitch drop is what makes it a kick
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / sr) * np.exp(-t_kick / 0.12)

    t_snare = np.arange(int(0.25 * sr)) / sr
    snare = 0.7 * _noise_burst(rng, len(t_snare), 0.07, sr, 1) + 0.5 * np.sin(
        2 * np.pi * 185 * t_snare
    ) * np.exp(-t_snare / 0.04)

    clap = np.zeros(int(0.3 * sr))
    for k, offset in enumerate((0.0, 0.011, 0.023)):  # three hands slightly apart
        dsp.add_at(clap, _noise_burst(rng, int(0.01 * sr), 0.004, sr, 1) * (0.8 - 0.1 * k), int(offset * sr))
    dsp.add_at(clap, 0.8 * _noise_burst(rng, int(0.25 * sr), 0.06, sr, 1), int(0.03 * sr))

    hat = 0.5 * _noise_burst(rng, int(0.06 * sr), 0.015, sr, 2)
    open_hat = 0.45 * _noise_burst(rng, int(0.4 * sr), 0.12, sr, 2)
    crash = 0.5 * _noise_burst(rng, int(2.0 * sr), 0.7, sr, 2)
    return {"kick": kick, "snare": snare, "clap": clap, "hat": hat, "open_hat": open_hat, "crash": crash}


def render_drums(hits: list[Hit], kit: dict[str, np.ndarray], sr: int, n_samples: int) -> np.ndarray:
    track = np.zeros(n_samples)
    for hit in hits:
        dsp.add_at(track, hit.velocity * kit[hit.drum], round(hit.start_s * sr))
    return track
