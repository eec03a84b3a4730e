"""Synthesised drum kit and the placing of genre patterns on the timeline.

Each drum is made once per song from that song's random generator (so two songs' snares differ a
little, like two recordings) and then added at every hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.synth import dsp
from engine.data.synth.events import Hit

DRUM_NAMES = ("kick", "snare", "clap", "hat", "open_hat", "crash")


@dataclass(frozen=True)
class KitTuning:
    """How a genre's kit sounds: each genre has its own production sound as well as its own groove."""

    kick_low_hz: float = 48.0
    kick_drop_hz: float = 110.0  # extra pitch at the attack, falling to kick_low_hz
    kick_decay_s: float = 0.12
    snare_tone_hz: float = 185.0
    snare_tone_level: float = 0.5
    snare_decay_s: float = 0.07
    snare_brightness: int = 1  # difference steps on the snare noise: more = brighter, thinner
    hat_decay_s: float = 0.015


def _noise_burst(rng: np.random.Generator, n: int, decay_s: float, sr: int, highpass_steps: int):
    """White noise with an exponential decay; each difference step tilts it ~6 dB/octave brighter."""
    noise = rng.standard_normal(n + highpass_steps)
    for _ in range(highpass_steps):
        noise = np.diff(noise)
    return noise * np.exp(-np.arange(n) / (decay_s * sr)) / (2.0**highpass_steps) ** 0.5


def make_kit(rng: np.random.Generator, sr: int, tuning: KitTuning) -> dict[str, np.ndarray]:
    t_kick = np.arange(int(max(0.35, 3 * tuning.kick_decay_s) * sr)) / sr
    # The falling pitch is what makes a thump read as a kick drum.
    kick_freq = tuning.kick_low_hz + tuning.kick_drop_hz * np.exp(-t_kick / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / sr) * np.exp(-t_kick / tuning.kick_decay_s)

    t_snare = np.arange(int(max(0.25, 3 * tuning.snare_decay_s) * sr)) / sr
    rattle = _noise_burst(rng, len(t_snare), tuning.snare_decay_s, sr, tuning.snare_brightness)
    body = np.sin(2 * np.pi * tuning.snare_tone_hz * t_snare) * np.exp(-t_snare / 0.04)
    snare = 0.7 * rattle + tuning.snare_tone_level * body

    clap = np.zeros(int(0.3 * sr))
    for k, offset in enumerate((0.0, 0.011, 0.023)):  # three hands slightly apart
        dsp.add_at(clap, _noise_burst(rng, int(0.01 * sr), 0.004, sr, 1) * (0.8 - 0.1 * k), int(offset * sr))
    dsp.add_at(clap, 0.8 * _noise_burst(rng, int(0.25 * sr), 0.06, sr, 1), int(0.03 * sr))

    hat = 0.5 * _noise_burst(rng, int(max(0.06, 4 * tuning.hat_decay_s) * sr), tuning.hat_decay_s, sr, 2)
    open_hat = 0.45 * _noise_burst(rng, int(0.4 * sr), 0.12, sr, 2)
    crash = 0.5 * _noise_burst(rng, int(2.0 * sr), 0.7, sr, 2)
    return {"kick": kick, "snare": snare, "clap": clap, "hat": hat, "open_hat": open_hat, "crash": crash}


def render_drums(hits: list[Hit], kit: dict[str, np.ndarray], sr: int, n_samples: int) -> np.ndarray:
    track = np.zeros(n_samples)
    for hit in hits:
        dsp.add_at(track, hit.velocity * kit[hit.drum], round(hit.start_s * sr))
    return track
