"""Classifiers fitted on real corpus audio judge the model's upsampled renders (engine/evaluation/renders.py).

    python scripts/render_check.py                          # the default model, 2 songs per artist
    python scripts/render_check.py --model DIR --songs-per-artist 4 --guidance 0
    python scripts/render_check.py --bottom-alone             # which upsampler loses the labels

Upsampling is slow on a CPU: about 45 s per song for the default model, so the default run takes about
20 minutes. Label guidance defaults to the model's recommendation, as `cocompose generate` samples.
"""

from __future__ import annotations

import argparse

from cocompose.models import resolve_model
from engine.api import ComposeEngine
from engine.evaluation.renders import RenderCheckConfig, render_check


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--songs-per-artist", type=int, default=2)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--guidance", type=float, help="default: the model's recommendation")
    parser.add_argument("--upsample-temperature", type=float, default=0.99, help="the app's")
    parser.add_argument(
        "--upsample-lookahead",
        type=float,
        help="share of each upsampler window left to the next; default: the model's",
    )
    parser.add_argument(
        "--bottom-alone",
        action="store_true",
        help="also render the real songs' own middle codes through the bottom upsampler alone",
    )
    args = parser.parse_args()
    engine = ComposeEngine.load(resolve_model(args.model))
    guidance = engine.recommended_guidance if args.guidance is None else args.guidance
    config = RenderCheckConfig(
        songs_per_artist=args.songs_per_artist,
        seed=args.seed,
        guidance=guidance,
        upsample_temperature=args.upsample_temperature,
        upsample_lookahead=args.upsample_lookahead,
        bottom_alone=args.bottom_alone,
    )
    print(render_check(engine, config).to_text())


if __name__ == "__main__":
    main()
