"""Song form: intro, alternating verses and choruses, and an ending, fitted to a length in seconds.

Sections are whole bars at the song's tempo, except the ending, which takes whatever time is left
(at least `MIN_TAIL_S`) for a ritardando cadence and a final chord that rings out. So every song, long or
short, has a clear beginning and a clear end, which is what timing conditioning learns from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_TAIL_S = 2.0  # the cadence and final chord need this long to slow down, ring out and fade
MIN_BARS = 3  # intro + one verse + one chorus


@dataclass(frozen=True)
class Section:
    name: str  # intro | verse | chorus | ending
    start_s: float
    end_s: float
    start_bar: int
    n_bars: int  # whole bars at tempo; for the ending, the bars played before the final chord


def min_seconds(slowest_bar_s: float) -> float:
    """Shortest song whose form fits at the slowest tempo, rounded up to a tenth of a second."""
    return math.ceil((MIN_BARS * slowest_bar_s + MIN_TAIL_S) * 10) / 10


def plan_form(seconds: float, bar_s: float) -> list[Section]:
    bars = int((seconds - MIN_TAIL_S) / bar_s + 1e-9)  # tolerance: 3 bars of 3.33.. s fit in 10 s
    if bars < MIN_BARS:
        raise ValueError(f"{seconds} s is too short for a song form at {bar_s:.2f} s per bar")
    outro = 1 if bars >= 12 else 0  # long songs slow down over a full bar before the last chord
    intro = 1 if bars < 8 else 2 if bars < 24 else 4
    body = bars - intro - outro
    section_len = 4 if body >= 16 else 2 if body >= 4 else 1
    n_sections = body // section_len
    lengths = [section_len] * n_sections
    lengths[-1] += body % section_len
    names = ["verse" if i % 2 == 0 else "chorus" for i in range(n_sections)]
    names[-1] = "chorus"  # always peak on a chorus before the ending (odd counts end on a double chorus)

    sections = [Section("intro", 0.0, intro * bar_s, 0, intro)]
    bar = intro
    for name, length in zip(names, lengths, strict=True):
        sections.append(Section(name, bar * bar_s, (bar + length) * bar_s, bar, length))
        bar += length
    sections.append(Section("ending", bar * bar_s, float(seconds), bar, outro))
    return sections
