"""What the composer hands the renderer: timed notes, nothing audio-specific."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    start_s: float
    dur_s: float  # how long the key is held; instruments add their own release tail
    midi: int
    velocity: float  # 0..1


@dataclass(frozen=True)
class SungNote:
    start_s: float
    dur_s: float
    midi: int
    word: str
    vowel: str  # one of voice.VOWEL_FORMANTS


@dataclass(frozen=True)
class Hit:
    start_s: float
    drum: str  # one of drums.DRUM_NAMES
    velocity: float
