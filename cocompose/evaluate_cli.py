"""`cocompose evaluate`: the model card's metrics measured on held-out songs.

Without --data a fresh corpus is synthesised into a temporary folder, with a seed that training's
default corpus (seed 0) does not use, so the songs are held out. Bad input exits 2 (cli.main).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

# Far from the small seeds a training corpus is made with (`cocompose synth` defaults to 0).
HELD_OUT_SEED = 90210
DEFAULT_SONGS = 8
DEFAULT_SECONDS = 20.0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.evaluation import evaluate_model
    from engine.evaluation.run import check_model_folder

    check_model_folder(Path(args.model))  # before spending time on synthesis
    if args.max_windows is not None and args.max_windows < 1:
        raise ValueError(f"--max-windows must be at least 1, got {args.max_windows}")
    synth_options = [f"--{name}" for name in ("songs", "seconds", "seed") if getattr(args, name) is not None]
    if args.data and synth_options:
        raise ValueError(f"{', '.join(synth_options)} synthesise a corpus; they cannot be used with --data")
    if args.data:
        card = evaluate_model(args.model, args.data, args.top, args.max_windows, args.device)
    else:
        with tempfile.TemporaryDirectory(prefix="cocompose-heldout-") as tmp:
            _synthesise(args, Path(tmp))
            card = evaluate_model(args.model, tmp, args.top, args.max_windows, args.device)
    print(card.to_text())
    if args.json:
        Path(args.json).write_text(card.to_json() + "\n")
        print(f"wrote {args.json}")
    return 0


def _synthesise(args: argparse.Namespace, folder: Path) -> None:
    from engine.data.synth import write_corpus

    songs = DEFAULT_SONGS if args.songs is None else args.songs
    seconds = DEFAULT_SECONDS if args.seconds is None else args.seconds
    seed = HELD_OUT_SEED if args.seed is None else args.seed
    print(f"synthesising {songs} held-out songs of {seconds:g} s (seed {seed})", flush=True)
    write_corpus(folder, songs=songs, seconds=seconds, seed=seed)


def add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="measure a model's card metrics on held-out songs",
        description="Print the VQ-VAE's spectral convergence (dB) and codebook usage per level and the "
        "priors' held-out bits per token, beside the targets. Songs come from --data CORPUS_DIR, or "
        "are synthesised (--songs/--seconds/--seed) into a temporary folder. See docs/TRAINING.md.",
    )
    evaluate.add_argument(
        "--model", required=True, metavar="DIR", help="model folder (bundle.json or vqvae + prior)"
    )
    evaluate.add_argument("--data", metavar="CORPUS_DIR", help="held-out songs with a metadata file")
    evaluate.add_argument("--songs", type=int, help=f"songs to synthesise (default {DEFAULT_SONGS})")
    evaluate.add_argument(
        "--seconds", type=float, help=f"length of each synthesised song (default {DEFAULT_SECONDS:g})"
    )
    evaluate.add_argument("--seed", type=int, help=f"synthesis seed (default {HELD_OUT_SEED})")
    evaluate.add_argument("--top", help="top prior to score when the folder has several")
    evaluate.add_argument(
        "--max-windows", type=int, metavar="N", help="score at most N windows per song and prior"
    )
    evaluate.add_argument("--device", help="torch device (default cpu)")
    evaluate.add_argument("--json", metavar="OUT", help="also write the card as JSON to OUT")
    evaluate.set_defaults(run=cmd_evaluate)
