"""Each genre's usual tempo and metre in a training set: what a prior with a beat clock plays a genre at
when the musician names no tempo (saved with the prior's settings as `genre_tempi`)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable


def genre_tempi(records: Iterable) -> dict[str, list]:
    """{genre (lower case): [median tempo in bpm, most common beats per bar]} over the records that
    give a tempo; genres none of whose songs give one are left out."""
    tempi: dict[str, list[float]] = defaultdict(list)
    metres: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        if record.tempo_bpm is None:
            continue
        genre = record.genre.lower()
        tempi[genre].append(float(record.tempo_bpm))
        metres[genre][int(record.beats_per_bar or 4)] += 1
    # Ties between metres go to the smaller count of beats, so the choice does not hang on file order.
    return {
        genre: [float(statistics.median(values)), min(metres[genre], key=lambda b: (-metres[genre][b], b))]
        for genre, values in sorted(tempi.items())
    }
