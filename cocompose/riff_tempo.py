"""The tempo of a song primed from a riff: the riff's own, so that the continuation keeps its pulse.

Only for a model whose top prior has a beat clock, and only when the song has no tempo named: a tempo
the musician sets always wins. A riff recorded to a count-in plays at the count-in's tempo, with a bar
line on the beat after it; any other is listened to for its tempo and bar lines, and every riff for its
metre (`ComposeEngine.riff_beat`). One with no steady pulse leaves the song at its genre's usual tempo.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cocompose.song.records import Conditioning, Tempo


def _riff_tempo(
    engine,
    audio: np.ndarray,
    sample_rate: int,
    genre: str,
    max_seconds: float | None,
    counted: tuple[float, float] | None,
) -> Tempo | None:
    """The riff's tempo (a count-in's, or heard in the riff read as `engine.encode_prime` reads it), its
    metre and bar line as heard, or None when there is no steady pulse to hear."""
    beat = engine.riff_beat(audio, sample_rate, genre, max_seconds, counted)
    if beat is None:
        return None
    return Tempo(beat.tempo_bpm, beat.beats_per_bar, round(beat.downbeat_seconds, 3), from_riff=True)


def _said(whose: str, tempo: Tempo) -> str:
    return (
        f"{whose} tempo: {tempo.bpm:g} bpm, {tempo.beats_per_bar} beats a bar, first bar line at "
        f"{tempo.downbeat_seconds:.2f} s"
    )


def primed_conditioning(
    engine,
    audio: np.ndarray,
    sample_rate: int,
    conditioning: Conditioning,
    max_seconds: float | None = None,
    counted: tuple[float, float] | None = None,
) -> tuple[Conditioning | None, str | None]:
    """(the song's start conditioning with the riff's tempo, or None to keep it; a line for the musician
    saying what was heard, or None when there was nothing to listen for). `counted`: (bpm, where the beat
    after the count-in falls) for a riff recorded to a count-in, whose tempo is then the count-in's and
    first bar line that beat; its metre is still heard in it."""
    if conditioning.tempo is not None or not engine.has_beat_clock:
        return None, None
    tempo = _riff_tempo(engine, audio, sample_rate, conditioning.genre, max_seconds, counted)
    if tempo is None:
        return None, "no steady beat heard in the riff: the song keeps its genre's usual tempo"
    return replace(conditioning, tempo=tempo), _said("the count-in's" if counted else "the riff's", tempo)
