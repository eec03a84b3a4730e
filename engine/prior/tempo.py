"""A song's beat as the label vector holds it: tempo, beats per bar and the sample where a bar starts.

Plain Python, no torch, so the song records and the GUI can check a tempo without loading the engine; the
positions' bins are worked out in `engine.prior.beat_clock`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TEMPO_SCALE = 100  # label entry = round(tempo_bpm * TEMPO_SCALE)
NO_CLOCK = 0  # the bin of every position of a song without a clock
MIN_TEMPO_BPM = 20.0
MAX_TEMPO_BPM = 400.0
MAX_BEATS_PER_BAR = 16
NO_CLOCK_SLOTS = (0, 0, 0)


@dataclass(frozen=True)
class BeatClock:
    """Tempo, metre and where a bar starts (a sample of the song at the model's rate)."""

    tempo_bpm: float
    beats_per_bar: int = 4
    anchor: int = 0

    def __post_init__(self) -> None:
        tempo = float(self.tempo_bpm)
        if not (math.isfinite(tempo) and MIN_TEMPO_BPM <= tempo <= MAX_TEMPO_BPM):
            raise ValueError(
                f"a tempo must lie between {MIN_TEMPO_BPM:g} and {MAX_TEMPO_BPM:g} beats per minute, "
                f"got {self.tempo_bpm!r}"
            )
        per_bar = self.beats_per_bar
        if int(per_bar) != per_bar or not 1 <= per_bar <= MAX_BEATS_PER_BAR:
            raise ValueError(
                f"beats per bar must be a whole number from 1 to {MAX_BEATS_PER_BAR}, got {per_bar!r}"
            )

    def slots(self) -> tuple[int, int, int]:
        return round(float(self.tempo_bpm) * TEMPO_SCALE), int(self.beats_per_bar), int(self.anchor)
