"""The five genres: tempo range, metre, swing, mode, chord progression, drum pattern, vocal rhythm.

Tempo ranges do not overlap and each genre has its own metre/swing/drum signature, so a model can learn
genre from rhythm alone; mode and progression give it a harmonic signature as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.synth.drums import KitTuning
from engine.data.synth.theory import DOM7, MAJ, MAJ7, MIN, MIN7

# A drum pattern: (16th step within the bar, drum, velocity).
DrumPattern = tuple[tuple[int, str, float], ...]
# A vocal rhythm for one bar: (onset beat, length in beats) per sung word.
VocalRhythm = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Genre:
    name: str
    tempo_bpm: tuple[int, int]  # inclusive range, one beat = one quarter note
    beats_per_bar: int
    swing: float  # where the off-beat 8th falls within the beat: 0.5 straight, 2/3 triplet shuffle
    mode: str
    progression: tuple[tuple[int, tuple[int, ...]], ...]  # (root offset from tonic, chord shape) per bar
    drums: DrumPattern  # the groove of a verse/chorus bar
    fill: DrumPattern  # replaces `drums` in the last bar of a section
    verse_rhythms: tuple[VocalRhythm, ...]
    chorus_rhythms: tuple[VocalRhythm, ...]
    kit: KitTuning


def _steps(drum: str, steps: range | tuple[int, ...], velocity: float) -> tuple[tuple[int, str, float], ...]:
    return tuple((s, drum, velocity) for s in steps)


LOFI = Genre(
    name="lofi",
    tempo_bpm=(72, 84),
    beats_per_bar=4,
    swing=0.62,
    mode="dorian",
    progression=((0, MIN7), (5, MIN7), (3, MAJ7), (10, DOM7)),  # i7 iv7 bIII-maj7 bVII7: jazzy minor 7ths
    # Lazy boom-bap: kick on 1 and the "and" of 2, soft snare on 2 and 4, swung 8th hats.
    drums=_steps("kick", (0, 6, 10), 0.8)
    + _steps("snare", (4, 12), 0.55)
    + _steps("hat", range(0, 16, 2), 0.3),
    fill=_steps("kick", (0, 6), 0.8)
    + _steps("snare", (4, 12, 14), 0.55)
    + _steps("hat", range(0, 12, 2), 0.3),
    verse_rhythms=(((0, 1.5), (1.5, 0.5), (2, 2)), ((0.5, 1), (1.5, 1), (2.5, 1.5))),
    chorus_rhythms=(((0, 2), (2, 2)), ((0, 1), (1, 1), (2, 2))),
    kit=KitTuning(
        kick_low_hz=45, kick_drop_hz=60, kick_decay_s=0.18, snare_brightness=0, snare_decay_s=0.09
    ),  # dull, dusty
)

BLUES = Genre(
    name="blues",
    tempo_bpm=(92, 104),
    beats_per_bar=4,
    swing=2 / 3,
    mode="mixolydian",
    progression=((0, DOM7), (5, DOM7), (0, DOM7), (7, DOM7)),  # I7 IV7 I7 V7: dominant sevenths everywhere
    # Shuffle: ride/hat on every swung 8th, kick 1 and 3, backbeat snare.
    drums=_steps("kick", (0, 8), 0.75) + _steps("snare", (4, 12), 0.6) + _steps("hat", range(0, 16, 2), 0.2),
    fill=_steps("kick", (0, 8), 0.75)
    + _steps("snare", (4, 10, 12, 14), 0.6)
    + _steps("hat", (0, 2, 6), 0.35),
    verse_rhythms=(((0, 1), (1, 1), (2, 0.5), (2.5, 1.5)), ((0, 0.5), (0.5, 1.5), (2, 2))),
    chorus_rhythms=(((0, 1.5), (1.5, 0.5), (2, 2)), ((0, 1), (1, 1), (2, 1), (3, 1))),
    kit=KitTuning(hat_decay_s=0.2, snare_tone_level=0.2, snare_decay_s=0.12),  # ride cymbal, brushed snare
)

MARCH = Genre(
    name="march",
    tempo_bpm=(112, 120),
    beats_per_bar=4,
    swing=0.5,
    mode="major",
    progression=((0, MAJ), (5, MAJ), (7, MAJ), (0, MAJ)),  # I IV V I: plain major triads
    # Bass drum on the strong beats, snare on 2 and 4 with a 16th-note roll leading into the next bar.
    drums=_steps("kick", (0, 8), 0.8)
    + _steps("hat", (0, 4, 8, 12), 0.3)  # the cymbal player keeps every beat
    + _steps("snare", (4,), 0.6)
    + tuple((s, "snare", 0.3 + 0.08 * (s - 12)) for s in range(12, 16)),
    fill=_steps("kick", (0,), 0.8) + tuple((s, "snare", 0.2 + 0.05 * (s - 4)) for s in range(4, 16)),
    verse_rhythms=(((0, 1), (1, 1), (2, 1), (3, 1)), ((0, 1.5), (1.5, 0.5), (2, 2))),
    chorus_rhythms=(((0, 2), (2, 1), (3, 1)), ((0, 1), (1, 1), (2, 2))),
    # Concert bass drum (low, long, hardly any sweep) and a tight, bright field snare.
    kit=KitTuning(kick_low_hz=55, kick_drop_hz=30, kick_decay_s=0.3, snare_brightness=2, snare_decay_s=0.05),
)

TECHNO = Genre(
    name="techno",
    tempo_bpm=(126, 134),
    beats_per_bar=4,
    swing=0.5,
    mode="phrygian",
    progression=((0, MIN), (0, MIN), (1, MAJ), (0, MIN)),  # droning i with a dark phrygian bII
    # Four-on-the-floor kick, clap on 2 and 4, open hat on every off-beat, quiet 16th closed hats.
    drums=_steps("kick", (0, 4, 8, 12), 0.95)
    + _steps("clap", (4, 12), 0.5)
    + _steps("open_hat", (2, 6, 10, 14), 0.4)
    + _steps("hat", (1, 3, 5, 7, 9, 11, 13, 15), 0.2),
    fill=_steps("kick", (0, 4, 8, 12), 0.95) + _steps("clap", (4, 12, 13, 14, 15), 0.5),
    verse_rhythms=(((0, 0.5), (0.5, 0.5), (1, 1), (2, 2)), ((0, 1), (1.5, 0.5), (2, 2))),
    chorus_rhythms=(((0, 4),), ((0, 2), (2, 2))),
    kit=KitTuning(
        kick_low_hz=50, kick_drop_hz=180, kick_decay_s=0.25, hat_decay_s=0.01
    ),  # long drum-machine kick
)

WALTZ = Genre(
    name="waltz",
    tempo_bpm=(140, 160),
    beats_per_bar=3,
    swing=0.5,
    mode="major",
    progression=((0, MAJ), (9, MIN), (2, MIN), (7, DOM7)),  # I vi ii V7
    # Oom-pah-pah: kick on 1, light snare+hat on 2 and 3.
    drums=_steps("kick", (0,), 0.7) + _steps("snare", (4, 8), 0.25) + _steps("hat", (4, 8), 0.3),
    fill=_steps("kick", (0,), 0.7) + _steps("snare", (4, 6, 8, 10), 0.3),
    verse_rhythms=(((0, 1), (1, 1), (2, 1)), ((0, 2), (2, 1))),
    chorus_rhythms=(((0, 3),), ((0, 2), (2, 1))),
    kit=KitTuning(kick_decay_s=0.08, snare_tone_level=0.0, snare_decay_s=0.15),  # light kick, brushes
)

GENRES: tuple[Genre, ...] = (LOFI, BLUES, MARCH, TECHNO, WALTZ)
