"""The file formats a track can be exported to, and what each one accepts (rates, bit depths, quality).

Everything is encoded by libsndfile (through soundfile), so a format is a libsndfile container plus a
subtype. The lossy codecs only accept certain sample rates; `choose_sample_rate` picks one for the caller
or refuses an explicit rate the codec cannot take, rather than letting libsndfile fail half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cocompose.export.errors import ExportError

BitDepth = Literal[16, 24, 32, "float"]

# MPEG-1, -2 and -2.5 layer III each define three rates; LAME refuses anything else.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# Opus runs internally at 48 kHz and only accepts these input rates.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# Wide enough for any real master; outside it libsndfile's encoders (FLAC, Vorbis) refuse or misbehave.
LOSSLESS_RATE_RANGE = (8000, 192000)


@dataclass(frozen=True)
class AudioFormat:
    name: str  # what the caller passes as `format`, e.g. "flac"
    extensions: tuple[str, ...]  # lower case, with the dot; the first is the canonical one
    container: str  # libsndfile major format
    subtypes: dict[BitDepth, str]  # bit depth -> libsndfile subtype; lossy codecs use the key 16 only
    default_bit_depth: BitDepth
    rates: tuple[int, ...] | None  # the only rates the codec accepts; None: any in LOSSLESS_RATE_RANGE
    max_channels: int
    lossy: bool
    # libsndfile's compression level (0 = best quality, 1 = smallest file) used when no quality is given.
    # Chosen for music: about 200 kb/s stereo for MP3 and Vorbis, 150 kb/s for Opus (see docs/EXPORT.md).
    default_compression_level: float | None = None
    bitrate_mode: str | None = None

    def accepts_rate(self, rate: int) -> bool:
        if self.rates is not None:
            return rate in self.rates
        low, high = LOSSLESS_RATE_RANGE
        return low <= rate <= high

    def describe_rates(self) -> str:
        if self.rates is not None:
            return ", ".join(str(rate) for rate in self.rates) + " Hz"
        return f"{LOSSLESS_RATE_RANGE[0]}–{LOSSLESS_RATE_RANGE[1]} Hz"


FORMATS: dict[str, AudioFormat] = {
    fmt.name: fmt
    for fmt in (
        AudioFormat(
            "wav",
            (".wav",),
            "WAV",
            {16: "PCM_16", 24: "PCM_24", 32: "PCM_32", "float": "FLOAT"},
            default_bit_depth=24,
            rates=None,
            max_channels=2,
            lossy=False,
        ),
        AudioFormat(
            "flac",
            (".flac",),
            "FLAC",
            {16: "PCM_16", 24: "PCM_24"},
            default_bit_depth=24,
            rates=None,
            max_channels=2,
            lossy=False,
        ),
        AudioFormat(
            "ogg",
            (".ogg", ".oga"),
            "OGG",
            {16: "VORBIS"},
            default_bit_depth=16,
            rates=None,
            max_channels=2,
            lossy=True,
            default_compression_level=0.4,
        ),
        AudioFormat(
            "opus",
            (".opus",),
            "OGG",
            {16: "OPUS"},
            default_bit_depth=16,
            rates=OPUS_RATES,
            max_channels=2,
            lossy=True,
            default_compression_level=0.7,
        ),
        AudioFormat(
            "mp3",
            (".mp3",),
            "MP3",
            {16: "MPEG_LAYER_III"},
            default_bit_depth=16,
            rates=MP3_RATES,
            max_channels=2,
            lossy=True,
            default_compression_level=0.1,
            bitrate_mode="VARIABLE",
        ),
    )
}


def resolve_format(path: Path, format: str | None) -> AudioFormat:
    """The format named by `format`, else the one the file extension implies."""
    if format is not None:
        fmt = FORMATS.get(format.lower().lstrip("."))
        if fmt is None:
            raise ExportError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.extensions:
            return fmt
    known = ", ".join(ext for fmt in FORMATS.values() for ext in fmt.extensions)
    shown = f"extension {suffix!r}" if suffix else "no extension"
    raise ExportError(
        f"cannot tell the format of {path.name!r} ({shown}); use one of {known} or pass format="
    )


def choose_sample_rate(fmt: AudioFormat, source_rate: int, requested: int | None) -> int:
    """The rate to encode at: `requested` if the codec takes it, else the source rate or the next one up.

    An explicit request the codec cannot honour is refused, because silently encoding at another rate
    would surprise the caller; with no request, resampling is the helpful thing to do (e.g. Opus needs
    48 kHz and Jukebox renders 44.1 kHz).
    """
    if requested is not None:
        if not fmt.accepts_rate(requested):
            raise ExportError(
                f"{fmt.name} cannot be written at {requested} Hz; it supports {fmt.describe_rates()}"
            )
        return requested
    if fmt.accepts_rate(source_rate):
        return source_rate
    if fmt.rates is None:
        low, high = LOSSLESS_RATE_RANGE
        return min(max(source_rate, low), high)
    higher = [rate for rate in fmt.rates if rate >= source_rate]
    return min(higher) if higher else max(fmt.rates)


def choose_subtype(fmt: AudioFormat, bit_depth: BitDepth | None) -> str:
    if fmt.lossy:
        if bit_depth is not None:
            raise ExportError(f"{fmt.name} is a lossy codec and has no bit depth; leave bit_depth unset")
        return fmt.subtypes[16]
    depth = fmt.default_bit_depth if bit_depth is None else bit_depth
    if depth not in fmt.subtypes:
        choices = ", ".join(repr(key) for key in fmt.subtypes)
        raise ExportError(f"{fmt.name} cannot store bit depth {depth!r}; choose one of {choices}")
    return fmt.subtypes[depth]


def compression_level(fmt: AudioFormat, quality: float | None) -> float | None:
    """libsndfile's compression level for a quality in [0, 1] (1 = best), or the format's default.

    libsndfile counts the other way (0 = best). LAME refuses a level of exactly 1, so the worst quality
    asked for is kept just inside it.
    """
    if quality is None:
        return fmt.default_compression_level
    if not fmt.lossy:
        raise ExportError(f"{fmt.name} is lossless and has no quality setting; leave quality unset")
    if not 0.0 <= quality <= 1.0:
        raise ExportError(f"quality must be between 0 (smallest file) and 1 (best sound), not {quality}")
    return min(1.0 - quality, 0.99)
