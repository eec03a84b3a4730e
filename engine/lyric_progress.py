"""Where in its lyrics each top-level code of a song sings (the app's lyric highlight), as a value:
`ComposeEngine.lyric_progress` builds it from the top prior's alignment head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LyricProgress:
    """Which lyric character each top-level code of a song sings, by the top prior's alignment head.

    sections: (first code, lyrics text) per run of codes under one conditioning, the first at 0.
    tokens[k]: index into the full lyric tokens of code k's section with the largest alignment weight;
    chars[k]: the offset in that section's text of the character that token came from. Both are -1
    for codes whose section has no lyrics.
    """

    sections: tuple[tuple[int, str], ...]
    tokens: np.ndarray  # (K,) int64
    chars: np.ndarray  # (K,) int64

    @property
    def n_codes(self) -> int:
        return len(self.chars)

    def lyrics_at(self, code: int) -> str:
        """The text sung at top-level code `code` (0 <= code < n_codes)."""
        found = ""
        for first, text in self.sections:
            if first > code:
                break
            found = text
        return found

    def char_at(self, code: int, lyrics: str) -> int:
        """The offset in `lyrics` sung at `code`, or -1 when that code is outside the song, sings another
        text (a section with other lyrics) or nothing."""
        if not 0 <= code < self.n_codes or self.lyrics_at(code) != lyrics:
            return -1
        return int(self.chars[code])

    def sung(self, lyrics: str) -> int:
        """How many characters of `lyrics` have been sung: up to and including the one the last code that
        sings this text attends to (0 when no code does)."""
        for code in range(self.n_codes - 1, -1, -1):
            at = self.char_at(code, lyrics)
            if at >= 0:
                return at + 1
            if self.lyrics_at(code) == lyrics:
                break
        return 0
