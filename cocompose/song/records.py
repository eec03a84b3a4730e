"""The records of a song: frozen dataclasses, so a node handed to the UI can never change under it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import ClassVar

from cocompose.song.codes import Codes
from engine.prior.tempo import MAX_BEATS_PER_BAR, MAX_TEMPO_BPM, MIN_TEMPO_BPM, BeatClock


class NodeState(StrEnum):
    """Where a node's codes stand. Only an `IN_PROGRESS` node grows; a crash leaves it `INTERRUPTED`."""

    DONE = "done"
    IN_PROGRESS = "in_progress"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ArtistBlend:
    """A second artist mixed into the first: embedding = (1 - weight) * artist + weight * other."""

    other_artist: str
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"an artist blend weight must be between 0 and 1, not {self.weight}")


@dataclass(frozen=True)
class Tempo:
    """The beat of a song, for models with a beat clock: beats per minute and beats per bar, named by the
    musician or heard in the riff the song was primed from (`from_riff`)."""

    bpm: float
    beats_per_bar: int = 4
    # Where the first bar line falls, in seconds after the moment this tempo takes effect: in a riff,
    # where its first bar starts; a tempo the musician names starts a bar where it takes effect (0).
    downbeat_seconds: float = 0.0
    from_riff: bool = False

    # What the engine accepts (`engine.prior.tempo`), for the GUI's fields.
    MIN_BPM: ClassVar[float] = MIN_TEMPO_BPM
    MAX_BPM: ClassVar[float] = MAX_TEMPO_BPM
    MAX_BEATS_PER_BAR: ClassVar[int] = MAX_BEATS_PER_BAR

    def __post_init__(self) -> None:
        BeatClock(self.bpm, self.beats_per_bar)  # the engine's range, and its message, for both numbers
        if not (math.isfinite(self.downbeat_seconds) and self.downbeat_seconds >= 0):
            raise ValueError(f"a first bar line is 0 s or later, not {self.downbeat_seconds!r}")

    def __str__(self) -> str:
        return f"{self.bpm:g} bpm, {self.beats_per_bar}/4" + (" (from the riff)" if self.from_riff else "")

    def to_dict(self) -> dict:
        """As stored: the later fields only where they differ from their defaults, so that a named tempo
        is written with the two fields it always had."""
        data = asdict(self)
        for later in fields(self)[2:]:
            if data[later.name] == later.default:
                del data[later.name]
        return data

    @classmethod
    def parse(cls, text: str) -> Tempo:
        """'BPM' or 'BPM/BEATS' (e.g. '120', '150/3') -> Tempo; ValueError saying what is wrong."""
        bpm, sep, beats = text.strip().partition("/")
        usage = f"a tempo is BPM or BPM/BEATS_PER_BAR (e.g. 120 or 150/3), not {text!r}"
        try:
            numbers = float(bpm), int(beats) if sep else 4
        except ValueError:
            raise ValueError(f"{usage}: both must be numbers") from None
        try:
            return cls(*numbers)
        except ValueError as exc:
            raise ValueError(f"{usage}: {exc}") from None


@dataclass(frozen=True)
class Conditioning:
    """What the prior is told about the music. Set on a node, it applies to that node's whole subtree."""

    artist: str
    genre: str
    lyrics: str = ""
    blend: ArtistBlend | None = None
    tempo: Tempo | None = None  # None: the genre's usual tempo (models without a beat clock ignore it)

    def to_json(self) -> str:
        data = asdict(self)
        if self.tempo is None:
            del data["tempo"]  # so songs composed without a tempo read the same in older versions
        else:
            data["tempo"] = self.tempo.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Conditioning:
        data = json.loads(text)
        blend = data.pop("blend", None)
        tempo = data.pop("tempo", None)
        return cls(
            **data, blend=ArtistBlend(**blend) if blend else None, tempo=Tempo(**tempo) if tempo else None
        )


@dataclass(frozen=True)
class Sampling:
    """The settings that sampled a node, enough to sample it again bit-exactly with the same model."""

    seed: int
    temperature: float = 0.98
    top_k: int = 0
    top_p: float = 0.0
    model: str = ""
    guidance: float = 0.0  # label guidance; 0 for takes sampled before it existed (format 2 files)


@dataclass(frozen=True)
class Node:
    """One segment of top-level codes. The song is the concatenation of the codes along a root path.

    `conditioning` is None when the node inherits it from its parent; the root always has one.
    `sampling` is None for the root (empty, or the prime's codes) and for nodes made by a cut, whose
    codes were sampled as part of the node above them.
    """

    id: int
    parent_id: int | None
    codes: Codes = field(default_factory=Codes)
    conditioning: Conditioning | None = None
    sampling: Sampling | None = None
    name: str = ""
    hidden: bool = False
    state: NodeState = NodeState.DONE
    created_at: float = 0.0


@dataclass(frozen=True)
class ModelInfo:
    """The top-level prior a project is made with; its hash tells caches and resumptions apart."""

    name: str = ""
    hash: str = ""
    sample_rate: int = 44_100
    codes_per_second: float = 44_100 / 128  # top level of the official VQ-VAE hops 128 samples


@dataclass(frozen=True)
class SongInfo:
    """Song-wide facts. The base conditioning lives on the root node, so a duet is just a later change."""

    title: str
    planned_seconds: float
    model: ModelInfo
    prime_audio_blob: int | None = None  # blobs.id of the original prime audio, if primed
    created_at: float = 0.0
