"""Small training folders for the dataset and training tests: written in milliseconds, no silence.

Tones with a little noise make every encoder vector distinct, so no two codebook entries start equal
(exact ties in the nearest-code search would make runs depend on rounding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf


def write_corpus(
    folder: Path,
    songs: int = 3,
    seconds: float = 2.0,
    sample_rate: int = 22050,
    channels: int = 1,
    artists: tuple[str, ...] = ("Ada Tone", "Bo Noise"),
    genres: tuple[str, ...] = ("rock", "jazz"),
    seed: int = 0,
    tempi: tuple[tuple[float, int], ...] = (),
) -> Path:
    """tempi: (bpm, beats per bar) of song i is tempi[i % len(tempi)]; none given, no song has a tempo."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(songs):
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        tone = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
        audio = np.stack([tone + 0.05 * rng.standard_normal(len(t)) for _ in range(channels)], axis=1)
        name = f"song_{i}.wav"
        sf.write(folder / name, audio.astype(np.float32), sample_rate, subtype="FLOAT")
        rows.append(
            {
                "path": name,
                "artist": artists[i % len(artists)],
                "genre": genres[i % len(genres)],
                "lyrics": f"la la song {i}\nsing it again",
            }
        )
        if tempi:
            rows[-1]["tempo_bpm"], rows[-1]["beats_per_bar"] = tempi[i % len(tempi)]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder
