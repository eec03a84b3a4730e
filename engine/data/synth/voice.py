"""A formant singer: a glottal source shaped by three vowel resonances, with vibrato.

Source-filter model, evaluated per harmonic: the glottal pulse train has harmonics falling at about
-12 dB/octave; the vocal tract is a cascade of three two-pole resonators (formants F1-F3) whose
frequency response is multiplied onto those harmonics. The product becomes a one-cycle wavetable for
that vowel at that pitch, played with a delayed vibrato. Because the vowel colour (mostly F1/F2) is set
by the lyric word being sung, the spectrum of the sung line carries the lyrics.
"""

from __future__ import annotations

import numpy as np

from engine.data.synth import dsp
from engine.data.synth.events import SungNote
from engine.data.synth.theory import midi_to_hz

# (F1, F2, F3) in Hz and bandwidths, roughly an adult singer's vowels.
VOWEL_FORMANTS: dict[str, tuple[float, float, float]] = {
    "a": (800.0, 1200.0, 2500.0),
    "e": (480.0, 1850.0, 2550.0),
    "i": (300.0, 2300.0, 3000.0),
    "o": (500.0, 850.0, 2450.0),
    "u": (320.0, 750.0, 2350.0),
}
FORMANT_BANDWIDTHS = (90.0, 110.0, 160.0)


def tract_gain(freqs: np.ndarray, vowel: str) -> np.ndarray:
    """|H(f)| of the cascade of the vowel's three resonators, each 1 at DC (the classic cascade synth)."""
    gain = np.ones_like(freqs)
    for centre, width in zip(VOWEL_FORMANTS[vowel], FORMANT_BANDWIDTHS, strict=True):
        gain *= centre**2 / np.sqrt((centre**2 - freqs**2) ** 2 + (width * freqs) ** 2)
    return gain


def sing_note(note: SungNote, sr: int, breath: np.random.Generator) -> np.ndarray:
    f0 = float(midi_to_hz(note.midi))
    n = int((note.dur_s + 0.06) * sr)
    k = np.arange(1, dsp.harmonic_count(f0, sr, 40) + 1, dtype=np.float64)
    source = 1.0 / k**2  # glottal pulse spectrum
    table = dsp.table_from_harmonics(source * tract_gain(k * f0, note.vowel))
    phase = dsp.vibrato_phase(f0, n, sr, rate_hz=5.5, depth_semitones=0.35, delay_s=0.2)
    tone = dsp.play_table(table, phase)
    env = dsp.adsr(n, sr, attack=0.04, decay=0.2, sustain=0.85, release=0.06, gate=int(note.dur_s * sr))
    # A little breath noise through the same vowel keeps it from sounding like an organ pipe.
    air = breath.standard_normal(n) * 0.02
    return (tone / (np.max(np.abs(table)) + 1e-9) + air) * env


def render_voice(notes: list[SungNote], sr: int, n_samples: int, breath: np.random.Generator) -> np.ndarray:
    track = np.zeros(n_samples)
    for note in notes:
        dsp.add_at(track, sing_note(note, sr, breath), round(note.start_s * sr))
    return track
