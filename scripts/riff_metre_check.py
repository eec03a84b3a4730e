"""Does a primed song keep the riff's metre? The default model continues waltz riffs cut from fresh
synthetic songs under a 4/4 genre (blues), and 4/4 riffs under the waltz, each twice from the same riff,
tempo and bar line (as `cocompose prime` hears them): told 3 beats a bar and told 4. Each continuation's
preview, from 1 s after the riff, is scored by how much better its bars repeat in threes than in fours
(`engine/analysis/beat.py`: `bar_repetition` at 3 minus at 4, on the beat heard in it).

    python scripts/riff_metre_check.py                 # 10 riffs of each kind, about 4 minutes
    python scripts/riff_metre_check.py --riffs 20 --model DIR

Top-level previews are dull, so the estimator hears no steady beat in some continuations; pairs with
one of them unheard are left out of the comparison.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from cocompose.models import resolve_model
from engine.analysis.beat import bar_repetition, estimate_beat, sounds_on_grid
from engine.api import ComposeEngine, LabelSpec
from engine.data.synth import body_excerpt, compose_song
from engine.prior.sampler import SamplingSettings

RIFF_SECONDS, CONTINUATION_SECONDS, SETTLE_SECONDS = 8.0, 8.0, 1.0


def threes_over_fours(audio: np.ndarray, rate: int, bpm: float) -> float | None:
    """How much better the audio's bars repeat every 3 beats than every 4, on the beat heard in it."""
    found = estimate_beat(audio, rate, 4, bpm)
    if found is None:
        return None
    sounds = sounds_on_grid(audio, rate, found.tempo_bpm, found.first_beat_seconds)
    in_threes, in_fours = bar_repetition(sounds, 3), bar_repetition(sounds, 4)
    return None if in_threes is None or in_fours is None else in_threes - in_fours


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--riffs", type=int, default=10, help="riffs of each kind (waltz, 4/4)")
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    engine = ComposeEngine.load(resolve_model(args.model))
    if not engine.has_beat_clock:
        parser.error(f"{args.model} has no beat clock: it cannot be told a metre")
    settings = SamplingSettings(temperature=0.98, guidance=engine.recommended_guidance)
    sr, rng = engine.sample_rate, np.random.default_rng(args.seed)
    wanted = {"waltz": args.riffs, "4/4": args.riffs}
    pairs: dict[str, list[tuple[float, float]]] = {kind: [] for kind in wanted}
    index = 0
    while any(wanted.values()):
        plan = compose_song(args.seed, index, 30.0)
        index += 1
        kind = "waltz" if plan.genre.beats_per_bar == 3 else "4/4"
        if wanted[kind] == 0:
            continue
        wanted[kind] -= 1
        riff = body_excerpt(plan, sr, RIFF_SECONDS, rng)
        genre = "blues" if kind == "waltz" else "waltz"
        beat = engine.riff_beat(riff, sr, genre)
        row = {"riff": kind, "told genre": genre, "metre heard": beat and beat.beats_per_bar}
        if beat is None:
            print(json.dumps(row), flush=True)
            continue
        codes = engine.encode_prime(riff, sr)
        for per_bar in (3, 4):
            spec = LabelSpec(plan.artist.name, genre, total_seconds=30.0, tempo_bpm=beat.tempo_bpm,
                             beats_per_bar=per_bar, bar_start_seconds=beat.downbeat_seconds)  # fmt: skip
            n_new = round(CONTINUATION_SECONDS * engine.codes_per_second)
            pieces = engine.generate(codes, n_new, [index], spec, settings)
            audio, _ = engine.decode_preview(np.concatenate([codes, *(p.codes[0] for p in pieces)]))
            heard = audio[len(riff) + round(SETTLE_SECONDS * sr) :].astype(np.float64)
            row[f"told {per_bar}"] = threes_over_fours(heard, sr, beat.tempo_bpm)
        if row["told 3"] is not None and row["told 4"] is not None:
            pairs[kind].append((row["told 3"], row["told 4"]))
        print(json.dumps(row), flush=True)
    for kind, scored in pairs.items():
        if scored:
            three, four = np.mean(scored, axis=0)
            more = sum(a > b for a, b in scored)
            print(f"{kind} riffs: {len(scored)} pairs heard; threes over fours told 3: {three:+.2f}, "
                  f"told 4: {four:+.2f}; told 3 repeats more in threes in {more} of them")  # fmt: skip


if __name__ == "__main__":
    main()
