"""The tempo of a song primed from a riff: the riff's own, so that the continuation keeps its pulse.

Only for a model whose top prior has a beat clock, and only when the song has no tempo named: a tempo
the musician sets always wins. A riff recorded to a count-in plays at the count-in's tempo; any other is
listened to (`ComposeEngine.riff_beat`), and one with no steady pulse leaves the song at its genre's
usual tempo.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cocompose.song.records import Conditioning, Tempo


def _heard_tempo(
    engine, audio: np.ndarray, sample_rate: int, genre: str, max_seconds: float | None
) -> Tempo | None:
    """The riff's tempo as heard in it (read as `engine.encode_prime` reads it), or None."""
    beat = engine.riff_beat(audio, sample_rate, genre, max_seconds)
    if beat is None:
        return None
    return Tempo(beat.tempo_bpm, beat.beats_per_bar, round(beat.downbeat_seconds, 3), from_riff=True)


def counted_tempo(engine, genre: str, bpm: float, click_start_seconds: float) -> Tempo:
    """The tempo of a riff played to a count-in: the count-in's, with a bar line on the beat that
    followed it (`click_start_seconds` from the riff's first sample; the genre's usual bar length)."""
    _, per_bar = engine.usual_beat(genre)
    bar_seconds = per_bar * 60.0 / bpm
    return Tempo(bpm, per_bar, round(click_start_seconds % bar_seconds, 3), from_riff=True)


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
    after the count-in falls) for a riff recorded to a count-in, whose tempo is then the count-in's."""
    if conditioning.tempo is not None or not engine.has_beat_clock:
        return None, None
    if counted is not None:
        tempo = counted_tempo(engine, conditioning.genre, *counted)
        return replace(conditioning, tempo=tempo), _said("the count-in's", tempo)
    tempo = _heard_tempo(engine, audio, sample_rate, conditioning.genre, max_seconds)
    if tempo is None:
        return None, "no steady beat heard in the riff: the song keeps its genre's usual tempo"
    return replace(conditioning, tempo=tempo), _said("the riff's", tempo)
