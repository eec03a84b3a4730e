"""A procedural music generator: the corpus the default model is trained on (no data to download).

Six artists (each a timbre and a playing style) x five genres (tempo, metre, swing, mode, progression,
drums), songs with intro/verse/chorus/ending form, and a formant voice singing generated lyrics. See
docs/CORPUS.md for what each feature is there to teach.
"""

from engine.data.synth.artists import ARTISTS
from engine.data.synth.corpus import METADATA_NAME, write_corpus
from engine.data.synth.genres import GENRES
from engine.data.synth.song import (
    MIN_DUET_SECONDS,
    MIN_SONG_SECONDS,
    body_excerpt,
    compose_song,
    render_song,
    render_stems,
)

__all__ = [
    "ARTISTS",
    "GENRES",
    "METADATA_NAME",
    "MIN_DUET_SECONDS",
    "MIN_SONG_SECONDS",
    "body_excerpt",
    "compose_song",
    "render_song",
    "render_stems",
    "write_corpus",
]
