"""The six artists: each one timbre (see instruments) and one way of playing a bar of chords.

Timbre and playing style are tied together on purpose, the way a real band sounds like itself on every
record: artist conditioning then has a consistent, learnable signature, whatever the genre.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.data.synth.events import Note
from engine.data.synth.theory import Chord


@dataclass(frozen=True)
class BarContext:
    """Everything a player needs to play one bar."""

    start_s: float
    beat_s: float
    beats: int
    swing: float
    chord: Chord
    scale: list[int]  # scale tones over the whole usable range, ascending
    section: str
    rng: np.random.Generator

    def at(self, beat: float) -> float:
        """Seconds at a beat position in this bar, with off-beat 8ths pushed late by the swing."""
        whole = np.floor(beat)
        frac = beat - whole
        swung = np.where(frac < 0.5, frac * 2 * self.swing, self.swing + (frac - 0.5) * 2 * (1 - self.swing))
        return float(self.start_s + (whole + swung) * self.beat_s)

    def note(self, beat: float, beats_long: float, midi: int, velocity: float) -> Note:
        return Note(self.at(beat), beats_long * self.beat_s, int(midi), float(velocity))


def arpeggiator(ctx: BarContext) -> list[Note]:
    """Broken chords in 8ths, up and back down across two octaves; each note left to ring."""
    tones = ctx.chord.tones(55, 6)
    cycle = tones + tones[-2:0:-1]
    lift = 0.1 if ctx.section == "chorus" else 0.0
    return [
        ctx.note(i / 2, 1.0, cycle[i % len(cycle)], 0.65 + lift + 0.15 * (i % 2 == 0))
        for i in range(ctx.beats * 2)
    ]


def sustained_pad(ctx: BarContext) -> list[Note]:
    """Whole-bar chords with the root doubled in the pedal; choruses open up with a higher voice."""
    count = 5 if ctx.section == "chorus" else 4
    tones = [ctx.chord.bass(36), *ctx.chord.tones(53, count)]
    return [ctx.note(0, ctx.beats - 0.05, m, 0.55) for m in tones]


def riffing_lead(ctx: BarContext) -> list[Note]:
    """A high lead riff in 8ths: chord tones on the beats, scale steps between, some rests."""
    high = [m for m in ctx.scale if 64 <= m <= 84]
    chord_tones = ctx.chord.tones(67, 3)
    notes = []
    current = chord_tones[0]
    for i in range(ctx.beats * 2):
        if i % 2 == 0:
            current = chord_tones[int(ctx.rng.integers(len(chord_tones)))]
        else:
            if ctx.rng.random() < 0.3:
                continue
            j = high.index(min(high, key=lambda m: abs(m - current)))
            current = high[int(np.clip(j + ctx.rng.choice((-1, 1)), 0, len(high) - 1))]
        notes.append(ctx.note(i / 2, 0.45, current, 0.7 + 0.2 * (i % 2 == 0)))
    return notes


def chip_arpeggio(ctx: BarContext) -> list[Note]:
    """Console-style: a very fast 16th-note arpeggio over a pulsing bass note on every beat."""
    tones = ctx.chord.tones(60, 3)
    order = (0, 1, 2, 1)
    arp = [ctx.note(i / 4, 0.24, tones[order[i % 4]] + 12 * (i // 8 % 2), 0.6) for i in range(ctx.beats * 4)]
    bass = [ctx.note(b, 0.5, ctx.chord.bass(36), 0.7) for b in range(ctx.beats)]
    return arp + bass


def pumping_bass(ctx: BarContext) -> list[Note]:
    """Syncopated octave-jumping bass in the sub register: this artist is all low end."""
    root = ctx.chord.bass(28)
    steps = (0, 3, 4, 6, 8, 11, 12, 14)[: 2 * ctx.beats]  # 16th steps (3/4 bars use the first six)
    return [
        ctx.note(s / 4, 0.4, root + 12 * (k % 3 == 2), 0.9 if s % 4 == 0 else 0.7)
        for k, s in enumerate(steps)
    ]


def alberti_piano(ctx: BarContext) -> list[Note]:
    """Classical-style busy left hand (root-fifth-third-fifth in 8ths) under right-hand block chords."""
    low = ctx.chord.tones(41, 3)
    pattern = (low[0], low[2], low[1], low[2])
    left = [ctx.note(i / 2, 0.5, pattern[i % 4], 0.55) for i in range(ctx.beats * 2)]
    right_beats = (0, 2) if ctx.beats == 4 else (0,)
    right = [ctx.note(b, 1.8, m, 0.5) for b in right_beats for m in ctx.chord.tones(60, 3)]
    return left + right


@dataclass(frozen=True)
class Artist:
    name: str
    instrument: str  # key of instruments.INSTRUMENTS
    play_bar: Callable[[BarContext], list[Note]]
    register: int  # lowest MIDI note of the final chord
    timbre: str  # for docs and metadata readers
    style: str


ARTISTS: tuple[Artist, ...] = (
    Artist("The Glass Harps", "plucked_string", arpeggiator, 55,
           "plucked harp-like string, bright attack that mellows", "8th-note arpeggios over two octaves"),
    Artist("Cathedral Smoke", "drawbar_organ", sustained_pad, 48,
           "drawbar organ with tremolo, no decay", "sustained whole-bar chords with a pedal root"),
    Artist("Neon Sirens", "fm_lead", riffing_lead, 64,
           "bright brassy two-operator FM lead with vibrato", "high riffs in 8ths"),
    Artist("Pixel Parade", "square_chip", chip_arpeggio, 60,
           "25% pulse wave, flat 8-bit envelope", "fast 16th arpeggios over a pulsing bass"),
    Artist("Sub Basement", "sub_bass_synth", pumping_bass, 33,
           "saw bass with closing filter plus sub-octave sine", "syncopated octave-jumping bass line"),
    Artist("The Velvet Hammers", "hammered_piano", alberti_piano, 48,
           "hammered detuned string pair, two-stage decay", "busy Alberti left hand, block chords"),
)  # fmt: skip


def ending_notes(artist: Artist, tonic: Chord, dominant: Chord, start_s: float, chord_s: float, end_s: float):
    """The cadence: dominant chord tones slowing down (ritardando) from `start_s`, then the tonic chord
    struck at `chord_s` and held to the end of the song."""
    notes: list[Note] = []
    if chord_s - start_s > 0.2:
        run = dominant.tones(artist.register, 6)
        # Onsets at (i/N)^1.7 of the span: each gap longer than the one before.
        for i, midi in enumerate(run):
            onset = start_s + (chord_s - start_s) * (i / len(run)) ** 1.7
            notes.append(Note(onset, 0.9 * (chord_s - onset), midi, 0.6))
    final = [tonic.bass(max(artist.register - 12, 28)), *tonic.tones(artist.register, 4)]
    for k, midi in enumerate(final):
        notes.append(Note(chord_s + 0.025 * k, end_s - chord_s - 0.1, midi, 0.75))  # a slight strum
    return notes
