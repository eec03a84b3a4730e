"""Classifiers fitted on real corpus audio judge the model's upsampled renders (engine/evaluation/renders.py).

    python scripts/render_check.py                          # the default model, 2 songs per artist
    python scripts/render_check.py --model DIR --songs-per-artist 4 --guidance 0
    python scripts/render_check.py --bottom-alone             # which upsampler loses the labels
    python scripts/render_check.py --save heard.npz           # keep every clip heard, to listen or judge

Each generated song is also continued with another artist from --change-at seconds and rendered across
the change (`artist changed ...` rows); --change-at 0 leaves that out.

Upsampling is slow on a CPU: about 35 s per 14 s song for the default model on one thread, and the
default run renders 36 (12 real songs' codes, 12 generated songs, the same 12 after an artist change),
about 25 minutes. Label guidance defaults to the model's recommendation, as `cocompose generate` samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cocompose.export.atomic import commit, make_durable, temporary_beside
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
    parser.add_argument("--change-at", type=float, default=6.0, help="seconds; 0: no artist change")
    parser.add_argument("--save", type=Path, help="an .npz file for every clip heard and its true names")
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
        change_at_seconds=args.change_at or None,
    )
    check = render_check(engine, config)
    print(check.to_text())
    if args.save is not None:
        save_heard(check, engine.sample_rate, args.save)
        print(f"wrote {args.save}")


def save_heard(check, rate: int, path: Path) -> None:
    """Every source's clips (float32, one row each) and true names, as `<source>|audio`,
    `<source>|artist`, `<source>|genre`, and `rate`."""
    arrays: dict[str, np.ndarray] = {"rate": np.asarray(rate)}
    for source, tasks in check.heard.items():
        arrays[f"{source}|audio"] = np.stack([np.asarray(c, np.float32) for c in tasks["artist"].clips])
        for task, labelled in tasks.items():
            arrays[f"{source}|{task}"] = np.asarray(labelled.names)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)  # a run stopped while writing leaves no half-written file
    with open(temporary, "wb") as f:
        np.savez(f, **arrays)
    make_durable(temporary)
    commit(temporary, path)


if __name__ == "__main__":
    main()
