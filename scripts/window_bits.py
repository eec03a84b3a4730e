"""Held-out bits per code of each upsampler by position inside its window (engine/evaluation/window_bits.py).

    python scripts/window_bits.py                      # the default model, 12 fresh songs, 6 windows each
    python scripts/window_bits.py --model DIR --songs 24

Prints each level's mean bits in buckets of 32 positions and for its last 64 positions; a window's last
positions predicted worse than its middle say how far a render's windows should look ahead
(bundle.json's "upsample_lookahead"). About two minutes for the default model on a CPU.
"""

from __future__ import annotations

import argparse

import numpy as np

from cocompose.models import resolve_model
from engine.api import ComposeEngine, LabelSpec
from engine.data.synth import compose_song, render_song
from engine.evaluation.conditioning import corpus_labels
from engine.evaluation.window_bits import bits_by_position


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--songs", type=int, default=12)
    parser.add_argument("--windows-per-song", type=int, default=6)
    parser.add_argument("--seed", type=int, default=777, help="synthesis seed of the fresh songs")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    engine = ComposeEngine.load(resolve_model(args.model))
    artists, genres = corpus_labels(engine)
    songs, index = [], 0
    while len(songs) < args.songs:
        plan = compose_song(args.seed, index, args.seconds)
        index += 1
        if plan.artist.name in artists and plan.genre.name in genres:
            spec = LabelSpec(plan.artist.name, plan.genre.name, total_seconds=args.seconds)
            songs.append((render_song(plan, engine.sample_rate), spec))
    for level in reversed(range(len(engine.bundle.upsamplers or []))):
        bits = bits_by_position(engine, level, songs, args.windows_per_song)
        buckets = bits[: len(bits) // 32 * 32].reshape(-1, 32).mean(axis=1)
        print(f"level {level} upsampler, {len(bits)} positions, mean {bits.mean():.3f} bits per code")
        print("  by 32 positions: " + " ".join(f"{b:.2f}" for b in buckets))
        tail = bits[-64:].reshape(-1, 8).mean(axis=1)
        print("  last 64 by 8:    " + " ".join(f"{b:.2f}" for b in tail))
        print(f"  middle half {np.mean(bits[len(bits) // 4 : 3 * len(bits) // 4]):.3f}")


if __name__ == "__main__":
    main()
