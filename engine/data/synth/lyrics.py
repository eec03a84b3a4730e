"""Generated lyrics: one-syllable English words, so each word is exactly one sung note.

`sung_vowel` turns a word into the vowel the singer holds; the voice colours the note with that vowel's
formants, which is the audible link between the lyric text and the audio.
"""

from __future__ import annotations

import numpy as np

DETERMINERS = ("the", "my", "your", "a", "this", "our")
ADJECTIVES = (
    "blue",
    "cold",
    "bright",
    "slow",
    "warm",
    "wild",
    "dark",
    "sweet",
    "green",
    "lost",
    "red",
    "old",
)
NOUNS = (
    "rain", "sun", "moon", "road", "heart", "fire", "sky", "sea", "night", "dream", "home", "town",
    "light", "song", "stone", "rose", "wind", "bird", "train", "door", "snow", "star", "tree", "boat",
)  # fmt: skip
VERBS = ("shine", "run", "fall", "burn", "sing", "hold", "wait", "fly", "call", "know", "keep", "turn")
LINKS = ("on", "in", "to", "by", "through", "and", "at", "for")

# Word shapes by length: a line of n sung notes takes template n (longer lines repeat the tail).
TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("noun",),
    2: ("verb", "noun"),
    3: ("det", "adj", "noun"),
    4: ("noun", "verb", "link", "noun"),
    5: ("det", "noun", "verb", "link", "noun"),
    6: ("det", "adj", "noun", "verb", "link", "noun"),
}
POOLS = {"det": DETERMINERS, "adj": ADJECTIVES, "noun": NOUNS, "verb": VERBS, "link": LINKS}

# Spelling -> sung vowel, longest patterns first ("night" is sung on its open /a/ of /ai/).
_VOWEL_SPELLINGS = (
    ("eart", "a"), ("oor", "o"), ("own", "a"), ("igh", "a"),
    ("ee", "i"), ("ea", "i"), ("ie", "i"), ("oo", "u"), ("ou", "u"), ("ue", "u"),
    ("ai", "e"), ("ay", "e"), ("ei", "e"), ("oa", "o"), ("ow", "o"), ("ar", "a"), ("ur", "e"),
)  # fmt: skip


def sung_vowel(word: str) -> str:
    """The vowel (a, e, i, o, u) a singer holds on a one-syllable word."""
    w = word.lower()
    for i in range(len(w)):
        for spelling, vowel in _VOWEL_SPELLINGS:
            if w.startswith(spelling, i):
                return vowel
        if w[i] in "aeiou":
            return w[i]
    return "i" if "y" in w else "a"


def make_line(n_words: int, rng: np.random.Generator) -> list[str]:
    template = TEMPLATES[min(n_words, max(TEMPLATES))]
    slots = list(template) + [template[-1]] * (n_words - len(template))
    return [str(rng.choice(POOLS[slot])) for slot in slots[:n_words]]


def format_lines(lines: list[list[str]]) -> str:
    """Lyric text as written to metadata: one line per sung bar, first word capitalised."""
    return "\n".join(" ".join(words).capitalize() for words in lines)
