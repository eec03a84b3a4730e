"""The six timbres, one per artist. Each is a function (note, sample rate) -> mono samples.

They differ where an ear (and a spectral classifier) looks first: spectral slope, odd/even harmonic
balance, attack and decay shape, and register. All are played from band-limited wavetables (see dsp).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.data.synth import dsp
from engine.data.synth.events import Note
from engine.data.synth.theory import midi_to_hz


def _harmonics(freq: float, sr: int, cap: int, weight: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    k = np.arange(1, dsp.harmonic_count(freq, sr, cap) + 1, dtype=np.float64)
    return weight(k)


def plucked_string(note: Note, sr: int) -> np.ndarray:
    """Harp-like pluck: bright at the attack, the upper partials die first (crossfade to a dull table)."""
    f = float(midi_to_hz(note.midi))
    n = int(min(note.dur_s + 0.6, 1.6) * sr)
    bright = dsp.table_from_harmonics(_harmonics(f, sr, 24, lambda k: np.sin(np.pi * k * 0.18) / k))
    dull = dsp.table_from_harmonics(_harmonics(f, sr, 4, lambda k: 1.0 / k**2))
    phase = dsp.steady_phase(f, n, sr)
    t = np.arange(n) / sr
    brightness = np.exp(-t / 0.08)
    tone = brightness * dsp.play_table(bright, phase) + (1 - brightness) * dsp.play_table(dull, phase)
    env = np.exp(-t / 0.45) * np.clip(t / 0.002, 0, 1)
    return note.velocity * tone * env


def drawbar_organ(note: Note, sr: int) -> np.ndarray:
    """Church/tonewheel organ: fixed drawbar mix (sub, octaves, fifths), no decay, slow tremolo."""
    f = float(midi_to_hz(note.midi))
    n = int((note.dur_s + 0.15) * sr)
    # Drawbars 16', 8', 5 1/3', 4', 2 2/3', 2' as multiples of the 8' pitch; the 16' sits an octave down.
    sub = 0.5 * f
    amps = np.zeros(dsp.harmonic_count(sub, sr, 16))
    for multiple, level in ((1, 0.7), (2, 1.0), (3, 0.6), (4, 0.55), (6, 0.35), (8, 0.3)):
        if multiple <= len(amps):
            amps[multiple - 1] = level
    tone = dsp.play_table(dsp.table_from_harmonics(amps), dsp.steady_phase(sub, n, sr))
    t = np.arange(n) / sr
    tremolo = 1.0 + 0.18 * np.sin(2 * np.pi * 6.3 * t)
    env = dsp.adsr(n, sr, attack=0.06, decay=0.2, sustain=0.9, release=0.15, gate=int(note.dur_s * sr))
    return 0.5 * note.velocity * tone * tremolo * env


def fm_lead(note: Note, sr: int) -> np.ndarray:
    """Bright, brassy two-operator FM (1:1): the modulation index follows the envelope (louder = brighter)."""
    f = float(midi_to_hz(note.midi))
    n = int((note.dur_s + 0.08) * sr)
    t = np.arange(n) / sr
    phase = dsp.vibrato_phase(f, n, sr, rate_hz=5.8, depth_semitones=0.25, delay_s=0.15)
    env = dsp.adsr(n, sr, attack=0.015, decay=0.25, sustain=0.75, release=0.08, gate=int(note.dur_s * sr))
    index = 1.2 + 3.0 * env
    # Keep the FM sidebands under Nyquist for high notes by easing the index off there.
    index *= min(1.0, 2500.0 / f)
    tone = np.sin(2 * np.pi * phase + index * np.sin(2 * np.pi * phase))
    return 0.6 * note.velocity * tone * env * np.clip(t / 0.004, 0, 1)


def square_chip(note: Note, sr: int) -> np.ndarray:
    """8-bit console pulse wave (25% duty): flat gate envelope, hollow and buzzy, no decay."""
    f = float(midi_to_hz(note.midi))
    n = int(note.dur_s * sr)
    duty = 0.25
    # Fourier series of a pulse of this duty: 2/(pi k) sin(pi k duty), band-limited by the table.
    table = dsp.table_from_harmonics(
        _harmonics(f, sr, 48, lambda k: 2 / (np.pi * k) * np.sin(np.pi * k * duty))
    )
    tone = dsp.play_table(table, dsp.steady_phase(f, n, sr))
    env = np.ones(n)
    edge = min(int(0.003 * sr), n // 2)  # 3 ms edges only to avoid clicks
    if edge:
        env[:edge] = np.linspace(0, 1, edge)
        env[-edge:] = np.linspace(1, 0, edge)
    return 0.45 * note.velocity * tone * env


def sub_bass_synth(note: Note, sr: int) -> np.ndarray:
    """Low saw through a closing low-pass (bright-to-dark tables) plus a sine an octave below."""
    f = float(midi_to_hz(note.midi))
    n = int((note.dur_s + 0.05) * sr)
    t = np.arange(n) / sr
    phase = dsp.steady_phase(f, n, sr)
    open_saw = dsp.table_from_harmonics(_harmonics(f, sr, 20, lambda k: (-1.0) ** (k + 1) / k))
    closed_saw = dsp.table_from_harmonics(_harmonics(f, sr, 3, lambda k: (-1.0) ** (k + 1) / k))
    cutoff = np.exp(-t / 0.07)
    saw = cutoff * dsp.play_table(open_saw, phase) + (1 - cutoff) * dsp.play_table(closed_saw, phase)
    sub = np.sin(np.pi * phase)  # half the frequency
    env = dsp.adsr(n, sr, attack=0.005, decay=0.3, sustain=0.7, release=0.05, gate=int(note.dur_s * sr))
    return note.velocity * (0.55 * saw + 0.8 * sub) * env


def hammered_piano(note: Note, sr: int) -> np.ndarray:
    """Piano-like: two slightly detuned strings (slow beating), two-stage decay, a felt-hammer thump."""
    f = float(midi_to_hz(note.midi))
    n = int(min(note.dur_s + 0.3, 2.5) * sr)
    t = np.arange(n) / sr
    table = dsp.table_from_harmonics(
        _harmonics(f, sr, 30, lambda k: np.exp(-0.35 * k) * (1 + 0.5 * (k % 7 != 0)))
    )
    strings = dsp.play_table(table, dsp.steady_phase(f * 1.0012, n, sr)) + dsp.play_table(
        table, dsp.steady_phase(f * 0.9988, n, sr, start=0.3)
    )
    # Fast initial drop then a long sustain-decay, released when the key lifts.
    ring_s = 1.2 * (261.6 / f) ** 0.5  # low strings ring longer
    env = 0.6 * np.exp(-t / 0.12) + 0.4 * np.exp(-t / ring_s)
    gate = int(note.dur_s * sr)
    if gate < n:
        env[gate:] *= np.exp(-np.arange(n - gate) / (0.08 * sr))
    thump = np.sin(2 * np.pi * 2.0 * f * t) * np.exp(-t / 0.01)
    return 0.5 * note.velocity * (strings * env + 0.4 * thump) * np.clip(t / 0.001, 0, 1)


INSTRUMENTS: dict[str, Callable[[Note, int], np.ndarray]] = {
    "plucked_string": plucked_string,
    "drawbar_organ": drawbar_organ,
    "fm_lead": fm_lead,
    "square_chip": square_chip,
    "sub_bass_synth": sub_bass_synth,
    "hammered_piano": hammered_piano,
}


def render_part(notes: list[Note], instrument: str, sr: int, n_samples: int) -> np.ndarray:
    """All of a part's notes on one track of `n_samples`."""
    play = INSTRUMENTS[instrument]
    track = np.zeros(n_samples)
    for note in notes:
        dsp.add_at(track, play(note, sr), round(note.start_s * sr))
    return track
