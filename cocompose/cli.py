"""`cocompose`: the headless face of the app. Every command prints a clear error and exits non-zero on
bad input instead of a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cocompose.compose_cli import add_compose_commands
from cocompose.download_cli import add_download_command
from cocompose.evaluate_cli import add_evaluate_command
from cocompose.export import ExportError
from cocompose.project_cli import add_project_commands
from cocompose.store import ProjectError
from cocompose.train_default_cli import add_train_default_command
from engine.errors import AudioInputError, CheckpointError
from engine.training.config import PRESET_NAMES


def _load_hparams_file(path: Path) -> dict[str, dict]:
    """Per-model reference hyper-parameters: {name: hps} or a fixture-style {'resolved_hps': {...}}."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read hyper-parameters from {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("resolved_hps"), dict):
        data = data["resolved_hps"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} must map model names (vqvae, prior_5b, ...) to hyper-parameter dicts")
    return data


def cmd_convert_jukebox(args: argparse.Namespace) -> int:
    from engine.official.convert import convert_jukebox

    hps = _load_hparams_file(Path(args.hparams)) if args.hparams else None
    results = convert_jukebox(
        args.src_dir,
        args.out_dir,
        hps,
        progress=lambda m: print(m, flush=True),
        only=args.only,
        ids_dir=args.ids,
    )
    for item in results:
        print(f"wrote {item.weights} and {item.settings.name}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from engine.data.synth import write_corpus

    rows = write_corpus(
        args.out_dir,
        songs=args.songs,
        seconds=args.seconds,
        seed=args.seed,
        sample_rate=args.sample_rate,
        fmt=args.format,
        overwrite=args.overwrite,
        progress=lambda m: print(m, flush=True),
        duets=args.duets,
    )
    print(f"wrote {len(rows)} songs and metadata.jsonl to {args.out_dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training import TrainRequest, train

    def optional_path(value: str | None) -> Path | None:
        return Path(value) if value else None

    request = TrainRequest(
        kind=args.model,
        data_dir=Path(args.data),
        run_dir=Path(args.run_dir),
        preset=args.preset,
        settings=tuple(args.set or ()),
        steps=args.steps,
        batch_size=args.batch,
        resume=args.resume,
        from_model=optional_path(args.from_model),
        vqvae=optional_path(args.vqvae),
        rekey_from=optional_path(args.rekey),
        level=args.level,
        ids_dir=optional_path(args.ids),
        metadata=optional_path(args.metadata),
        device=args.device,
    )
    return train(request, say=lambda message: print(message, flush=True))


def _add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a VQ-VAE, top prior or upsampler on a folder of songs",
        description="Train MODEL on DIR (audio files + metadata.jsonl or metadata.csv with file|path, "
        "artist, genre, lyrics) into RUN_DIR. Checkpoints are saved every save_every steps and on Ctrl-C; "
        "--resume continues exactly. Several GPUs: torchrun --nproc_per_node N -m cocompose.cli train ... "
        "See docs/TRAINING.md.",
    )
    train.add_argument("model", choices=("vqvae", "prior", "upsampler"), help="which model to train")
    train.add_argument("--data", required=True, metavar="DIR", help="folder of songs with a metadata file")
    train.add_argument(
        "--run",
        "--run-dir",
        dest="run_dir",
        required=True,
        metavar="RUN_DIR",
        # torchrun's own parser rejects "--run" as ambiguous (it has --run-path), so it needs --run-dir.
        help="folder for checkpoints and logs (spell it --run-dir under torchrun)",
    )
    train.add_argument("--preset", choices=PRESET_NAMES, help="model and optimiser preset "
                       "(default small)")  # fmt: skip
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one preset setting "
                       "(repeatable), e.g. --set lr=1e-4 --set n_ctx=2048")  # fmt: skip
    train.add_argument("--steps", type=int, help="train until this step")
    train.add_argument("--batch", type=int, help="global batch size (split across processes)")
    train.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    train.add_argument("--from", dest="from_model", metavar="MODEL", help="fine-tune this model (Cocompose "
                       "format, e.g. a converted official one); new artists get new ids")  # fmt: skip
    train.add_argument("--vqvae", metavar="MODEL", help="trained VQ-VAE that encodes audio (priors only)")
    train.add_argument("--rekey", metavar="OLD_VQVAE", help="with --from: the VQ-VAE the model was trained "
                       "on, when --vqvae retrained some of its levels; the model's rows for those levels' "
                       "codes are re-keyed to the new ones before training (docs/TRAINING.md)")  # fmt: skip
    train.add_argument("--level", type=int, help="upsampler level (default 0)")
    train.add_argument("--ids", metavar="DIR", help="official artist/genre id lists for --from (default: "
                       "the model's folder)")  # fmt: skip
    train.add_argument("--metadata", metavar="FILE", help="metadata file (default DIR/metadata.jsonl|csv)")
    train.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    train.set_defaults(run=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cocompose", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser(
        "convert-jukebox",
        help="convert downloaded official Jukebox checkpoints into Cocompose's safetensors format",
        description="Convert official Jukebox files (SRC_DIR/5b/vqvae.pth.tar, "
        "SRC_DIR/5b/prior_level_*.pth.tar, SRC_DIR/5b_lyrics/..., SRC_DIR/1b_lyrics/...) into OUT_DIR. "
        "The official files are read without executing anything in them.",
    )
    convert.add_argument("src_dir", help="folder holding the downloaded official files")
    convert.add_argument("out_dir", help="folder to write the converted models to")
    convert.add_argument(
        "--hparams",
        help="JSON of reference hyper-parameters per model name, for files that are not official-size",
    )
    convert.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="convert only these models (vqvae, upsampler_level_0, upsampler_level_1, prior_5b, "
        "prior_5b_lyrics, prior_1b_lyrics)",
    )
    convert.add_argument(
        "--ids",
        metavar="DIR",
        help="folder with the official artist/genre id lists (v2_artist_ids.txt, ...; jukebox/data/ids in "
        "the openai/jukebox repository), copied to OUT_DIR/ids; default: SRC_DIR/ids if present",
    )
    convert.set_defaults(run=cmd_convert_jukebox)

    synth = commands.add_parser(
        "synth",
        help="synthesise a training corpus of procedurally composed songs",
        description="Write N songs (six artists x five genres, with intro/verse/chorus/ending and a "
        "singing voice) plus metadata.jsonl into OUT_DIR. The same arguments always give byte-identical "
        "files. See docs/CORPUS.md.",
    )
    synth.add_argument("out_dir", help="folder to write the corpus to (created if missing)")
    synth.add_argument("--songs", type=int, default=100, help="number of songs (default 100)")
    synth.add_argument("--seconds", type=float, default=30.0, help="length of every song (default 30)")
    synth.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    synth.add_argument("--sample-rate", type=int, default=22050, help="sample rate in Hz (default 22050)")
    synth.add_argument("--format", choices=("flac", "wav"), default="flac", help="file format (default flac)")
    synth.add_argument("--overwrite", action="store_true", help="replace a corpus already in OUT_DIR")
    synth.add_argument(
        "--duets",
        type=float,
        default=0.0,
        metavar="P",
        help="share of songs whose part passes to another artist mid-song (0..1, default 0)",
    )
    synth.set_defaults(run=cmd_synth)
    _add_train_parser(commands)
    add_train_default_command(commands)  # train-default
    add_project_commands(commands)  # new, info, undo, redo, rename, hide, unhide, delete
    add_compose_commands(commands)  # generate, continue, pick, swap, prime, upsample, export
    add_evaluate_command(commands)  # evaluate
    add_download_command(commands)  # download-jukebox
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (
        CheckpointError,
        AudioInputError,
        ProjectError,
        ExportError,
        ValueError,
        FileNotFoundError,
    ) as exc:
        print(f"cocompose {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cocompose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
