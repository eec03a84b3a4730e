"""Track metadata (title, artist, ...) and how it is written into each format.

WAV (RIFF INFO), FLAC, Ogg Vorbis and Opus (Vorbis comments) are tagged by libsndfile itself. For MP3,
libsndfile 1.2.2 hands the strings to LAME, which writes them into ID3 frames marked ISO-8859-1 while
the bytes are UTF-8, so any accented title comes back garbled. MP3 files therefore get an ID3v2.3 tag
built here instead (`id3v2_tag`), with UTF-16 text where Latin-1 cannot hold it.

ID3v2.3 in brief: a 10-byte header ("ID3", version 3.0, flags, tag size as a 4-byte syncsafe integer,
7 bits per byte), then frames, each a 4-character id, a 4-byte plain big-endian size, 2 flag bytes and
the payload. A text frame's payload starts with an encoding byte (0 = Latin-1, 1 = UTF-16 with BOM).
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass

from cocompose.export.errors import ExportError

SOFTWARE = "Cocompose"


@dataclass(frozen=True)
class TrackTags:
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    comment: str = ""
    date: str = ""  # ISO 8601 is best ("2025-11-21"); MP3 keeps only the year (ID3v2.3 TYER)
    tracknumber: str = ""  # "3" or "3/12"
    copyright: str = ""

    def present(self) -> dict[str, str]:
        """The fields that have a value, by libsndfile's names for them."""
        return {name: value for name, value in asdict(self).items() if value}

    def check(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, str):
                raise ExportError(f"tag {name!r} must be text, not {type(value).__name__}")
            if "\x00" in value:
                # Every format stores tags as C strings, so a NUL would silently cut the text short.
                raise ExportError(f"tag {name!r} contains a NUL character")


# libsndfile field -> ID3v2.3 frame. The date becomes TYER (year only) below.
ID3_TEXT_FRAMES = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "genre": "TCON",
    "tracknumber": "TRCK",
    "copyright": "TCOP",
}


def syncsafe(size: int) -> bytes:
    """`size` as 4 bytes of 7 bits each, so the tag size never looks like an MPEG sync word (0xFFE)."""
    if size >= 1 << 28:
        raise ExportError("the tags are too large for an ID3v2 tag (256 MB)")
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def encode_text(text: str) -> tuple[bytes, bytes]:
    """(encoding byte, encoded text) in the narrowest encoding ID3v2.3 allows for `text`."""
    try:
        return b"\x00", text.encode("latin-1")
    except UnicodeEncodeError:
        return b"\x01", text.encode("utf-16")  # Python writes the byte-order mark first


def id3_frame(frame_id: str, payload: bytes) -> bytes:
    return frame_id.encode("ascii") + struct.pack(">I", len(payload)) + b"\x00\x00" + payload


def text_frame(frame_id: str, text: str) -> bytes:
    encoding, data = encode_text(text)
    return id3_frame(frame_id, encoding + data)


def comment_frame(text: str) -> bytes:
    """COMM: encoding, 3-letter language, a short description (empty here, NUL-ended), then the text."""
    encoding, data = encode_text(text)
    # In UTF-16 even the empty description carries a byte-order mark and ends with a 2-byte NUL.
    description = b"\x00" if encoding == b"\x00" else "".encode("utf-16") + b"\x00\x00"
    return id3_frame("COMM", encoding + b"eng" + description + data)


def id3v2_tag(tags: TrackTags) -> bytes:
    """A complete ID3v2.3 tag for `tags` (plus the encoding software), to put before the MPEG frames."""
    fields = tags.present()
    frames = [text_frame(ID3_TEXT_FRAMES[name], fields[name]) for name in ID3_TEXT_FRAMES if name in fields]
    year = re.match(r"\d{4}", fields.get("date", ""))
    if year:
        frames.append(text_frame("TYER", year.group()))
    if "comment" in fields:
        frames.append(comment_frame(fields["comment"]))
    frames.append(text_frame("TSSE", SOFTWARE))
    body = b"".join(frames)
    return b"ID3" + bytes((3, 0, 0)) + syncsafe(len(body)) + body


def id3v2_length(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of a file whose first 10 bytes are `head`; 0 if none."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0  # ID3v2.4 may end with a 10-byte footer
    return 10 + size + footer
