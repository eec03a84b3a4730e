"""`cocompose evaluate`: the model card's metrics measured on held-out songs.

Without --data a fresh corpus is synthesised into a temporary folder, with a seed that training's
default corpus (seed 0) does not use, so the songs are held out. With --conditioning the card also gets
the conditioning figures (engine/evaluation/conditioning.py): how often generated songs are classified
as the artist and genre they were conditioned on, and as the new artist after a mid-song change. Bad
input exits 2 (cli.main).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

# Far from the small seeds a training corpus is made with (`cocompose synth` defaults to 0).
HELD_OUT_SEED = 90210
DEFAULT_SONGS = 8
DEFAULT_SECONDS = 20.0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cocompose.models import resolve_model
    from engine.evaluation import evaluate_model
    from engine.evaluation.run import check_model_folder

    args.model = str(resolve_model(args.model))  # 'default', a folder, or an installed model's name
    check_model_folder(Path(args.model))  # before spending time on synthesis
    if args.max_windows is not None and args.max_windows < 1:
        raise ValueError(f"--max-windows must be at least 1, got {args.max_windows}")
    # With --conditioning, --seed also seeds the conditioning evaluation, so it may come with --data.
    synth_flags = ("songs", "seconds") if args.conditioning else ("songs", "seconds", "seed")
    synth_options = [f"--{name}" for name in synth_flags if getattr(args, name) is not None]
    if args.data and synth_options:
        raise ValueError(f"{', '.join(synth_options)} synthesise a corpus; they cannot be used with --data")
    conditioning = _conditioning_setup(args)  # bad options and unsuitable models fail before any work
    if args.data:
        card = evaluate_model(args.model, args.data, args.top, args.max_windows, args.device)
    else:
        with tempfile.TemporaryDirectory(prefix="cocompose-heldout-") as tmp:
            _synthesise(args, Path(tmp))
            card = evaluate_model(args.model, tmp, args.top, args.max_windows, args.device)
    print(card.to_text())
    data = card.to_dict()
    if conditioning is not None:
        from engine.evaluation.conditioning import evaluate_conditioning

        engine, config = conditioning
        report = evaluate_conditioning(engine, config, say=lambda line: print(line, flush=True))
        print()
        print(report.to_text())
        data["conditioning"] = report.to_dict()
    if args.json:
        from engine.checkpoint import atomic_write

        text = json.dumps(data, indent=2) + "\n"
        atomic_write(Path(args.json), lambda tmp: tmp.write_text(text))
        print(f"wrote {args.json}")
    return 0


COND_OPTIONS = (
    "cond_songs",
    "cond_genres",
    "cond_seconds",
    "cond_listen_from",
    "cond_clip",
    "cond_after_change",
    "cond_reference_songs",
    "cond_guidance",
)


def _conditioning_setup(args: argparse.Namespace):
    """(engine, ConditioningConfig) for --conditioning, None without it; ValueError for options that
    need it, bad values, and models whose labels are not the synthetic corpus's."""
    given = [f"--{name.replace('_', '-')}" for name in COND_OPTIONS if getattr(args, name) is not None]
    if not args.conditioning:
        if given:
            raise ValueError(f"{', '.join(given)} only apply with --conditioning")
        return None
    from dataclasses import replace

    from engine.api import ComposeEngine
    from engine.evaluation.conditioning import ConditioningConfig, corpus_labels

    config = ConditioningConfig(seed=HELD_OUT_SEED if args.seed is None else args.seed)
    changes = {
        "songs_per_artist": args.cond_songs,
        "genres_per_artist": args.cond_genres,
        "seconds": args.cond_seconds,
        "listen_from_seconds": args.cond_listen_from,
        "change_at_seconds": args.cond_listen_from,  # the change comes where the first song is heard
        "clip_seconds": args.cond_clip,
        "after_change_seconds": args.cond_after_change,
        "reference_songs": args.cond_reference_songs,
        "guidance": args.cond_guidance,
    }
    config = replace(config, **{key: value for key, value in changes.items() if value is not None})
    engine = ComposeEngine.load(args.model, top=args.top, device=args.device)
    if args.cond_guidance is None:  # measure what `generate` and the app do with this model
        config = replace(config, guidance=engine.recommended_guidance)
    corpus_labels(engine)
    return engine, config


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
        "--model", required=True, metavar="MODEL", help="'default', a model folder or an installed name"
    )
    evaluate.add_argument("--data", metavar="CORPUS_DIR", help="held-out songs with a metadata file")
    evaluate.add_argument("--songs", type=int, help=f"songs to synthesise (default {DEFAULT_SONGS})")
    evaluate.add_argument(
        "--seconds", type=float, help=f"length of each synthesised song (default {DEFAULT_SECONDS:g})"
    )
    evaluate.add_argument(
        "--seed", type=int, help=f"synthesis seed, also of --conditioning (default {HELD_OUT_SEED})"
    )
    evaluate.add_argument("--top", help="top prior to score when the folder has several")
    evaluate.add_argument(
        "--max-windows", type=int, metavar="N", help="score at most N windows per song and prior"
    )
    evaluate.add_argument("--device", help="torch device (default cpu)")
    cond = evaluate.add_argument_group(
        "conditioning",
        "Generate songs per artist and genre the model knows (it must know the synthetic corpus's names) "
        "and classify them with artist and genre classifiers fitted on held-out synthetic songs; --seed "
        "seeds both. Targets: artist 80%%, genre 70%%, new artist after a change 70%%.",
    )
    cond.add_argument("--conditioning", action="store_true", help="also measure what conditioning does")
    cond.add_argument("--cond-songs", type=int, metavar="N", help="songs per artist (default 6)")
    cond.add_argument(
        "--cond-genres",
        type=int,
        metavar="N",
        help="genres each artist's songs are spread over (songs with one label share a batch; default 2)",
    )
    cond.add_argument("--cond-seconds", type=float, metavar="S", help="length of each song (default 14)")
    cond.add_argument(
        "--cond-listen-from",
        type=float,
        metavar="S",
        help="clips are heard from here on, past the intro, and the artist changes here (default 8)",
    )
    cond.add_argument("--cond-clip", type=float, metavar="S", help="seconds per classified clip (default 3)")
    cond.add_argument(
        "--cond-guidance",
        type=float,
        metavar="G",
        help="label guidance strength when sampling (default: the model's recommendation, as generate)",
    )
    cond.add_argument(
        "--cond-after-change",
        type=float,
        metavar="S",
        help="the clip after an artist change starts this long after it (default 2)",
    )
    cond.add_argument(
        "--cond-reference-songs",
        type=int,
        metavar="N",
        help="held-out synthetic songs the classifiers are fitted (half) and tested (half) on (default 240)",
    )
    evaluate.add_argument("--json", metavar="OUT", help="also write the card as JSON to OUT")
    evaluate.set_defaults(run=cmd_evaluate)
