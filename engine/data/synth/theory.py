"""Pitch arithmetic shared by the composer: MIDI numbers, modes, chord shapes and key names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Modes as semitone offsets from the tonic.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}

# Chord shapes as semitone offsets from the chord root.
MAJ = (0, 4, 7)
MIN = (0, 3, 7)
MAJ7 = (0, 4, 7, 11)
MIN7 = (0, 3, 7, 10)
DOM7 = (0, 4, 7, 10)


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class Chord:
    """A chord as an absolute MIDI root plus its shape; `tones` places it in any register."""

    root: int
    shape: tuple[int, ...]

    def tones(self, low: int, count: int) -> list[int]:
        """The first `count` chord tones at or above MIDI `low`, stacked upwards through the octaves."""
        pitch_classes = {(self.root + s) % 12 for s in self.shape}
        out: list[int] = []
        midi = low
        while len(out) < count:
            if midi % 12 in pitch_classes:
                out.append(midi)
            midi += 1
        return out

    def bass(self, low: int) -> int:
        """The chord root at or above MIDI `low` (within one octave)."""
        return low + (self.root - low) % 12


@dataclass(frozen=True)
class Key:
    tonic: int  # MIDI number of the tonic in the octave starting at C3 (48..59)
    mode: str

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {self.mode}"

    def chord(self, offset: int, shape: tuple[int, ...]) -> Chord:
        return Chord(self.tonic + offset, shape)

    def scale(self, low: int, high: int) -> list[int]:
        """All scale tones in the MIDI range [low, high]."""
        pcs = {(self.tonic + s) % 12 for s in MODES[self.mode]}
        return [m for m in range(low, high + 1) if m % 12 in pcs]
