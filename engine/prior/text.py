"""Lyrics text <-> token ids, as the Jukebox lyric priors expect them.

Two vocabularies exist. The v2 one (5b_lyrics lyric encoder, 80 ids) includes `+`; the v3 one (1b_lyrics,
79 ids) does not. Id 0 is both padding and "unknown" and decodes to the empty string; the characters of
the vocabulary string get ids 1..len in order.

Cleaning transliterates to ASCII with `unidecode`, turns backslashes into newlines and then silently drops
every character outside the vocabulary. The reference pins unidecode 1.1.1; later releases transliterate
some characters differently (most visibly: 1.1.1 turns characters it does not know into "[?]", which
survives the vocabulary filter, while 1.2+ drops them), so the exact token stream depends on that pin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from unidecode import unidecode

_LETTERS_AND_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_V2_VOCAB = _LETTERS_AND_DIGITS + ".,:;!?-+'\"()[] \t\n"
_V3_VOCAB = _LETTERS_AND_DIGITS + ".,:;!?-'\"()[] \t\n"

PAD_ID = 0


@dataclass(frozen=True)
class LyricsVocab:
    """One lyrics vocabulary: `encode` cleans and tokenises, `decode` maps ids back to text."""

    characters: str
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _outside: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ids", {ch: i + 1 for i, ch in enumerate(self.characters)})
        # One character class of everything in the vocabulary, negated: runs of anything else are dropped.
        allowed = "".join(re.escape(ch) for ch in self.characters)
        object.__setattr__(self, "_outside", re.compile(f"[^{allowed}]+"))

    @property
    def n_vocab(self) -> int:
        """Number of ids including the padding/unknown id 0."""
        return len(self.characters) + 1

    def clean(self, text: str) -> str:
        """ASCII-transliterate, map backslash to newline, drop characters the vocabulary lacks."""
        ascii_text = unidecode(text).replace("\\", "\n")
        return self._outside.sub("", ascii_text)

    def tokenise(self, cleaned: str) -> list[int]:
        """Ids of already-cleaned text; a character outside the vocabulary is a caller bug."""
        try:
            return [self._ids[ch] for ch in cleaned]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in the lyrics vocabulary; clean() first"
            ) from None

    def encode(self, text: str) -> list[int]:
        return self.tokenise(self.clean(text))

    def source_offsets(self, text: str) -> list[int]:
        """For each token of `encode(text)`, the offset in `text` of the character it came from.

        Cleaning works character by character (unidecode transliterates each code point on its own), so
        a character yields zero tokens (dropped), one, or several ("ß" -> "ss": both at its offset).
        """
        offsets: list[int] = []
        for i, ch in enumerate(text):
            offsets.extend([i] * len(self.clean(ch)))
        return offsets

    def decode(self, ids: list[int]) -> str:
        """Text of ids; 0 (padding/unknown) decodes to nothing."""
        out = []
        for token in ids:
            token = int(token)
            if token == PAD_ID:
                continue
            if not 0 < token < self.n_vocab:
                raise ValueError(f"lyrics token id {token} is outside 0..{self.n_vocab - 1}")
            out.append(self.characters[token - 1])
        return "".join(out)


@cache
def lyrics_vocab(v3: bool) -> LyricsVocab:
    """The v2 (`v3=False`, 80 ids) or v3 (79 ids) lyrics vocabulary."""
    return LyricsVocab(_V3_VOCAB if v3 else _V2_VOCAB)
