"""Importing a prime: any audio file a musician may hand us, turned into mono samples at the model's rate.

One function, `import_audio`, used by `cocompose prime` and by the app. It reads WAV, FLAC, OGG (Vorbis,
Opus, FLAC) and MP3 (also AIFF) with soundfile, telling the format from the file's first bytes, never from
its name. It reads in blocks and stops at the span it needs, so an hour-long file costs the same memory
and time as a one-minute one: a prime is at most MAX_PRIME_SECONDS long (60 s, about two and a half top
prior contexts of the official models; the top prior only ever sees its last context of it). Every block
is downmixed (the mean of all channels) and fed to a streaming soxr resampler.

Anything unusable is refused with AudioImportError, whose message names the problem: an empty,
truncated, damaged or unrecognised file, a codec libsndfile cannot decode, a NaN, infinite or absurdly
large sample (named by its position), digital silence, or a sample rate outside 1 kHz to 768 kHz.
Quiet is not silence: a soft riff is taken, with a note. Qt-free and torch-free, so the app can call it.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

MAX_PRIME_SECONDS = 60.0
MIN_PRIME_SECONDS = 0.01  # shorter than this is a click, not a prime (and may resample to no samples)
MIN_SOURCE_RATE, MAX_SOURCE_RATE = 1_000, 768_000
MAX_MAGNITUDE = 1e6  # a float sample beyond this is damage, not headroom (+120 dB over full scale)
QUIET_DBFS = -60.0  # quieter than this gets a note (the VQ-VAE has rarely heard anything so soft)
KEEP_WHOLE_FILE_BYTES = 32 << 20  # a source file up to this size is kept in the project as it is
BLOCK_FRAMES = 1 << 16
# An MP3's length in its header (Xing/Info frame) is an estimate; allow a few frames of 1152 samples.
_MP3_LENGTH_SLACK = 4 * 1152

_EXTENSION_FORMATS = {
    ".wav": "WAV", ".wave": "WAV", ".bwf": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG",
    ".opus": "OGG", ".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF", ".aifc": "AIFF",
}  # fmt: skip
_READABLE = ("WAV", "FLAC", "OGG", "MP3", "AIFF")
# Formats we can recognise but not decode, with what to say about them.
_UNSUPPORTED = {
    "MP4": "an MP4/M4A file (AAC or ALAC audio)",
    "ASF": "a WMA/ASF file",
    "MIDI": "a MIDI file (notes, not recorded sound)",
    "CAF": "a Core Audio (CAF) file",
}
# WAVE format tags libsndfile cannot decode, by name (the common ones a musician meets).
_WAV_CODECS = {0x0055: "MPEG layer 3", 0x0011: "IMA ADPCM", 0x0002: "MS ADPCM", 0x0092: "Dolby AC-3",
               0x0161: "WMA", 0x00FF: "AAC", 0x2000: "AC-3"}  # fmt: skip
_OGG_CODECS = {b"\x01vorbis": "Vorbis", b"OpusHead": "Opus", b"\x7fFLAC": "FLAC", b"Speex   ": "Speex",
               b"\x80theora": "Theora video"}  # fmt: skip


class AudioImportError(ValueError):
    """An audio file that cannot be used as a prime; the message names the file and the problem."""


@dataclass(frozen=True)
class SourceInfo:
    """The file as found: its real container (sniffed), codec, rate, channels and length in seconds."""

    name: str
    container: str
    codec: str
    sample_rate: int
    channels: int
    seconds: float


@dataclass(frozen=True)
class ImportedAudio:
    samples: np.ndarray  # (T,) float32, mono, finite, peak <= 1, at sample_rate
    sample_rate: int
    source: SourceInfo
    notes: tuple[str, ...]  # what the musician should know (downmixed, trimmed, scaled, quiet, renamed)
    kept_audio: bytes  # what the project keeps of the source (the file, or the used span as FLAC)
    kept_name: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def import_audio(
    path: str | os.PathLike[str], sample_rate: int, max_seconds: float | None = None
) -> ImportedAudio:
    """The first `max_seconds` (None: MAX_PRIME_SECONDS) of the file at `path`, mono at `sample_rate`."""
    path = Path(path)
    max_seconds = MAX_PRIME_SECONDS if max_seconds is None else max_seconds
    if not (isinstance(max_seconds, int | float) and MIN_PRIME_SECONDS <= max_seconds <= MAX_PRIME_SECONDS):
        limits = f"{MIN_PRIME_SECONDS:g} s and at most {MAX_PRIME_SECONDS:g} s"
        raise AudioImportError(f"a prime is at least {limits} long, not {max_seconds}")
    if not MIN_SOURCE_RATE <= sample_rate <= MAX_SOURCE_RATE:
        raise AudioImportError(f"the model's sample rate {sample_rate} Hz is out of range")
    size, head = _size_and_head(path)
    container = _sniff(path, head)
    notes = []
    claimed = _EXTENSION_FORMATS.get(path.suffix.lower())
    if claimed != container:
        named = f"named {path.suffix}" if path.suffix else "without an extension"
        notes.append(f"{path.name} is {named} but is really a {container} file; it was read as {container}")
    wav = _wav_layout(head) if container == "WAV" else None

    try:
        with sf.SoundFile(str(path)) as f:
            info = _checked_info(path, f, container, wav)
            promised = _promised_frames(f, wav)
            want = min(promised, math.floor(max_seconds * f.samplerate))
            mono, read = _read_mono(path, f, want, sample_rate)
    except sf.LibsndfileError as exc:
        raise AudioImportError(_open_failure(path, container, head, exc)) from None
    except RuntimeError as exc:  # soundfile's own errors when a read fails half-way
        raise AudioImportError(f"{path.name} is damaged or truncated: {exc}") from None
    _check_complete(path, container, info, want, read)
    if container == "OGG" and read >= promised and not _ogg_ends_cleanly(path, size):
        raise AudioImportError(
            f"{path.name} is truncated: its Ogg stream stops after {read / info.sample_rate:.2f} s without "
            "its end marker (was it copied or downloaded completely?)"
        )
    if info.channels > 1:
        notes.append(f"downmixed {info.channels} channels to mono")
    if info.seconds > max_seconds + 1 / info.sample_rate:
        notes.append(f"used the first {max_seconds:g} s of {info.seconds:.1f} s")
    if info.sample_rate != sample_rate:
        notes.append(f"resampled from {info.sample_rate} Hz to {sample_rate} Hz")
    peak = float(np.abs(mono).max())
    if peak > 1.0:
        mono /= peak
        notes.append(f"it peaked at {20 * math.log10(peak):+.1f} dBFS and was scaled down to full scale")
    elif peak < 10 ** (QUIET_DBFS / 20):
        loudness = 20 * math.log10(peak) if peak > 0 else -math.inf
        notes.append(f"it is very quiet (peak {loudness:.0f} dBFS); the model may hear little in it")
    samples = mono.astype(np.float32)
    kept, kept_name = _kept_audio(path, size, samples, sample_rate, notes)
    return ImportedAudio(samples, sample_rate, info, tuple(notes), kept, kept_name)


def _promised_frames(f: sf.SoundFile, wav: _WavLayout | None) -> int:
    """Frames the header promises (for a WAV, from its data chunk, which libsndfile quietly clips)."""
    if wav is not None and wav.promised_frames is not None:
        return wav.promised_frames
    return f.frames


# -- reading ---------------------------------------------------------------------------------------
def _read_mono(path: Path, f: sf.SoundFile, want: int, rate: int) -> tuple[np.ndarray, int]:
    """Read up to `want` frames block by block: check, downmix, resample. Returns (float64 mono, frames)."""
    resampler = None
    if f.samplerate != rate:
        resampler = soxr.ResampleStream(f.samplerate, rate, 1, dtype="float64", quality="VHQ")
    pieces, read, audible = [], 0, False
    while read < want:
        block = f.read(min(BLOCK_FRAMES, want - read), dtype="float64", always_2d=True)
        if not len(block):
            break
        _check_values(path, block, read, f.samplerate)
        audible = audible or bool(np.any(block))
        # Dividing first keeps the sum of many huge channels finite.
        mono = (block / block.shape[1]).sum(axis=1)
        pieces.append(mono if resampler is None else resampler.resample_chunk(mono, last=False))
        read += len(block)
    if read and not audible:
        raise AudioImportError(
            f"{path.name} is digital silence: every sample of its first {read / f.samplerate:.2f} s is 0, "
            "so there is nothing to prime from"
        )
    if resampler is not None and read:
        pieces.append(resampler.resample_chunk(np.zeros(0), last=True))
    out = np.concatenate(pieces) if pieces else np.zeros(0)
    return out, read


def _check_values(path: Path, block: np.ndarray, offset: int, rate: int) -> None:
    bad = ~np.isfinite(block)
    huge = False
    if not bad.any():
        bad = np.abs(block) > MAX_MAGNITUDE
        huge = True
        if not bad.any():
            return
    frame, channel = np.argwhere(bad)[0]
    value = block[frame, channel]
    if huge:
        what = f"{value:.3g}, far beyond full scale (1.0)"
    else:
        what = "NaN" if np.isnan(value) else f"{value}"
    at = offset + frame
    where = f"sample {at} ({at / rate:.3f} s, channel {channel + 1} of {block.shape[1]})"
    raise AudioImportError(f"{path.name} is damaged: {where} is {what}")


# -- checks on the file itself ---------------------------------------------------------------------
def _size_and_head(path: Path) -> tuple[int, bytes]:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise AudioImportError(f"{path} is a folder, not an audio file")
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise AudioImportError(f"no such file: {path}") from None
    except PermissionError:
        raise AudioImportError(f"{path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise AudioImportError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise AudioImportError(f"{path.name} is empty (0 bytes)")
    return size, head


def _sniff(path: Path, head: bytes) -> str:
    """The container the first bytes show; refuses what is not audio we can read."""
    kind = _container_of(head)
    if kind in _READABLE:
        return kind
    if kind in _UNSUPPORTED:
        raise AudioImportError(
            f"{path.name} is {_UNSUPPORTED[kind]}, which Cocompose cannot read; convert it to WAV or FLAC"
        )
    raise AudioImportError(_not_audio(path, head))


def _not_audio(path: Path, head: bytes) -> str:
    claimed = _EXTENSION_FORMATS.get(path.suffix.lower())
    but = f" (it is named {path.suffix}, but its content is not {claimed})" if claimed else ""
    return (
        f"{path.name} is not an audio file Cocompose can read{but}: it starts with bytes "
        f"{head[:8].hex(' ')}, not those of WAV, FLAC, OGG or MP3"
    )


def _container_of(head: bytes) -> str | None:
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:3] == b"ID3" and len(head) >= 10:
        # An ID3 tag (size in 7-bit bytes) in front of MPEG frames, or, rarely, of a FLAC stream.
        tag = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        after = head[tag : tag + 4]
        return "FLAC" if after == b"fLaC" else "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "MP3"  # an MPEG audio frame sync with a valid layer
    if head[4:8] == b"ftyp":
        return "MP4"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "ASF"
    if head[:4] == b"MThd":
        return "MIDI"
    if head[:4] == b"caff":
        return "CAF"
    return None


@dataclass(frozen=True)
class _WavLayout:
    format_tag: int | None
    promised_frames: int | None  # from the data chunk's size; None when the writer left it open


def _wav_layout(head: bytes) -> _WavLayout | None:
    """Walk a RIFF WAVE file's chunks in `head` for its codec and the length its header promises."""
    if head[:4] != b"RIFF":
        return None  # RF64/RIFX: leave them to libsndfile
    pos, tag, align = 12, None, None
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            tag, _, _, _, align = struct.unpack("<HHIIH", head[pos + 8 : pos + 22])
            if tag == 0xFFFE and pos + 34 <= len(head):  # WAVE_FORMAT_EXTENSIBLE: the real tag is in the GUID
                tag = struct.unpack("<H", head[pos + 32 : pos + 34])[0]
        elif chunk == b"data":
            # 0 and 0xFFFFFFFF mark a size never filled in (a recorder that streams); trust the bytes.
            open_ended = not align or length in (0, 0xFFFFFFFF)
            return _WavLayout(tag, None if open_ended else length // align)
        pos += 8 + length + (length & 1)
    return _WavLayout(tag, None)


def _checked_info(path: Path, f: sf.SoundFile, container: str, wav: _WavLayout | None) -> SourceInfo:
    rate = f.samplerate
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioImportError(
            f"{path.name} says its sample rate is {rate} Hz, outside {MIN_SOURCE_RATE} to "
            f"{MAX_SOURCE_RATE} Hz; its header is damaged or it is not a real recording"
        )
    if f.channels < 1:
        raise AudioImportError(f"{path.name} says it has {f.channels} channels; its header is damaged")
    frames = _promised_frames(f, wav)
    if frames <= 0 and container == "OGG":
        raise AudioImportError(f"{path.name} is truncated or damaged: its Ogg stream decodes to no audio")
    if frames <= 0:
        raise AudioImportError(f"{path.name} holds no audio (0 samples)")
    if frames < MIN_PRIME_SECONDS * rate:
        raise AudioImportError(
            f"{path.name} is too short to prime from: {frames / rate * 1000:.1f} ms, and a prime needs at "
            f"least {MIN_PRIME_SECONDS * 1000:g} ms"
        )
    return SourceInfo(path.name, container, f.subtype, rate, f.channels, frames / rate)


def _check_complete(path: Path, container: str, info: SourceInfo, want: int, read: int) -> None:
    """The span asked for must really be in the file (libsndfile stops quietly where the bytes stop)."""
    slack = _MP3_LENGTH_SLACK if container == "MP3" else 0
    if read + slack < want:
        raise AudioImportError(
            f"{path.name} is truncated: its header promises {info.seconds:.2f} s of audio but it ends "
            f"after {read / info.sample_rate:.2f} s (was it copied or downloaded completely?)"
        )


def _ogg_ends_cleanly(path: Path, size: int) -> bool:
    """True when the file's last Ogg page is whole and marks the end of its stream (EOS flag).

    libsndfile reports a cut Ogg file as a shorter, intact one; only the missing end marker tells."""
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 17)))  # an Ogg page is at most 65 307 bytes
        tail = f.read()
    start = tail.rfind(b"OggS")
    if start < 0 or len(tail) < start + 27:
        return False
    flags, n_segments = tail[start + 5], tail[start + 26]
    table = tail[start + 27 : start + 27 + n_segments]
    whole = len(table) == n_segments and start + 27 + n_segments + sum(table) == len(tail)
    return whole and bool(flags & 0x04)


def _open_failure(path: Path, container: str, head: bytes, exc: sf.LibsndfileError) -> str:
    """Why libsndfile could not open or read a file whose first bytes looked like audio."""
    detail = str(exc).removeprefix("Error : ").split("': ", 1)[-1]
    if container == "MP3" and head[:3] != b"ID3":
        # Two bytes of frame sync are weak evidence (1 in 200 random files has them): if the decoder
        # finds no MPEG audio there, the file was most likely never audio at all.
        return _not_audio(path, head)
    if container == "WAV":
        layout = _wav_layout(head)
        if layout is not None and layout.format_tag in _WAV_CODECS:
            codec = _WAV_CODECS[layout.format_tag]
            return (
                f"{path.name} is a WAV file holding {codec} audio, a codec Cocompose cannot decode; "
                "convert it to plain PCM WAV or FLAC"
            )
        if layout is not None and layout.format_tag not in (None, 1, 3, 6, 7):
            tag = f"0x{layout.format_tag:04x}"
            return f"{path.name} is a WAV file with an unsupported codec (format tag {tag})"
    if container == "OGG":
        for magic, codec in _OGG_CODECS.items():
            if magic in head[:200] and codec not in ("Vorbis", "Opus", "FLAC"):
                return (
                    f"{path.name} is an Ogg file holding {codec}, which Cocompose cannot decode "
                    "(Vorbis, Opus and FLAC can be)"
                )
    return f"{path.name} looks like {container} but is damaged or truncated ({detail})"


# -- what the project keeps ------------------------------------------------------------------------
def _kept_audio(path: Path, size: int, samples: np.ndarray, rate: int, notes: list[str]) -> tuple[bytes, str]:
    """The source file itself when it is small; otherwise the span used, as mono FLAC at the model rate, so
    an hour-long file does not end up (and in memory) inside the project."""
    if size <= KEEP_WHOLE_FILE_BYTES:
        return path.read_bytes(), path.name
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="FLAC", subtype="PCM_24")
    notes.append(
        f"the project keeps the {len(samples) / rate:.1f} s used, as mono FLAC, not the whole "
        f"{size / 1e6:.0f} MB file"
    )
    return buffer.getvalue(), f"{path.stem} (prime).flac"
