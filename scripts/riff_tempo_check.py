"""Does a song primed from a riff keep the riff's tempo? The default model continues riffs cut from fresh
synthetic songs, once told the riff's tempo and bar lines (as `cocompose prime` now tells it) and once
the genre's usual tempo (as before); the beat of each continuation's preview, from 1 s after the riff,
is then heard with the same estimator.

    python scripts/riff_tempo_check.py                      # 30 songs, about 10 minutes on one thread
    python scripts/riff_tempo_check.py --songs 60 --model DIR

A continuation counts when its heard tempo lies within 4% of the riff's true tempo (the song's score).
Top-level previews are dull, so the estimator hears no steady beat in some continuations at all; those
count as misses for both.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from cocompose.models import resolve_model
from engine.analysis.beat import estimate_beat
from engine.api import ComposeEngine, LabelSpec
from engine.data.synth import body_excerpt, compose_song
from engine.prior.sampler import SamplingSettings

RIFF_SECONDS, CONTINUATION_SECONDS, SETTLE_SECONDS = 8.0, 8.0, 1.0


def continuation_tempo(engine, plan, riff, codes, beat, seed, settings) -> float | None:
    sr = engine.sample_rate
    genre = plan.genre
    told = beat is not None
    spec = LabelSpec(
        plan.artist.name,
        genre.name,
        total_seconds=plan.seconds,
        tempo_bpm=beat.tempo_bpm if told else None,
        beats_per_bar=beat.beats_per_bar if told else None,
        bar_start_seconds=beat.downbeat_seconds if told else 0.0,
    )
    n_new = round(CONTINUATION_SECONDS * engine.codes_per_second)
    pieces = engine.generate(codes, n_new, [seed], spec, settings)
    new = np.concatenate([piece.codes[0] for piece in pieces])
    audio, _ = engine.decode_preview(np.concatenate([codes, new]))
    heard = audio[len(riff) + round(SETTLE_SECONDS * sr) :].astype(np.float64)
    usual = engine.genre_tempo(genre.name)
    found = estimate_beat(heard, sr, genre.beats_per_bar, usual[0] if usual else None)
    return None if found is None else found.tempo_bpm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--songs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    engine = ComposeEngine.load(resolve_model(args.model))
    if not engine.has_beat_clock:
        parser.error(f"{args.model} has no beat clock: it cannot be told a tempo")
    settings = SamplingSettings(temperature=0.98, guidance=engine.recommended_guidance)
    sr, rng = engine.sample_rate, np.random.default_rng(args.seed)
    kept = {"riff": 0, "usual": 0}
    for index in range(args.songs):
        plan = compose_song(args.seed, index, 30.0)
        riff = body_excerpt(plan, sr, RIFF_SECONDS, rng)
        codes = engine.encode_prime(riff, sr)
        beat = engine.riff_beat(riff, sr, plan.genre.name)
        row = {"genre": plan.genre.name, "tempo": plan.tempo_bpm, "heard_in_riff": beat and beat.tempo_bpm}
        for mode, told in (("riff", beat), ("usual", None)):
            if mode == "riff" and beat is None:
                row[mode] = None
                continue
            row[mode] = continuation_tempo(engine, plan, riff, codes, told, index, settings)
            kept[mode] += row[mode] is not None and abs(row[mode] / plan.tempo_bpm - 1) < 0.04
        print(json.dumps(row), flush=True)
    for mode, label in (("riff", "told the riff's tempo"), ("usual", "told the genre's usual tempo")):
        print(f"{label}: {kept[mode]}/{args.songs} continuations within 4% of the riff's tempo")


if __name__ == "__main__":
    main()
