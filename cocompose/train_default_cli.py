"""`cocompose train-default`: rebuild the embedded default model from nothing (see
engine/training/default_model.py) and, with --install, put it where the app and `--model default` find it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cocompose.models import DEFAULT_MODEL_DIR as ASSETS_MODEL


def install(model_dir: Path, target: Path = ASSETS_MODEL) -> Path:
    """Copy a finished model folder to `target`, replacing the old one only once the copy is complete."""
    if not (model_dir / "bundle.json").is_file():
        raise FileNotFoundError(f"{model_dir} holds no finished model (no bundle.json); run the bundle stage")
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def cmd_train_default(args: argparse.Namespace) -> int:
    from engine.training.default_model import DefaultModelPipeline
    from engine.training.default_recipe import RECIPES

    pipeline = DefaultModelPipeline(Path(args.work), RECIPES[args.recipe], args.device,
                                    say=lambda message: print(message, flush=True))  # fmt: skip
    code = pipeline.run(args.only)
    if code == 0 and args.install and args.only in (None, "bundle"):
        print(f"installed the default model in {install(pipeline.model_dir, Path(args.install_to))}")
    return code


def add_train_default_command(commands) -> None:
    from engine.training.default_model import STAGES
    from engine.training.default_recipe import RECIPES

    parser = commands.add_parser(
        "train-default",
        help="rebuild the embedded default model end to end (corpus, VQ-VAE, decoders, prior, upsamplers)",
        description="Synthesize the corpus, train the VQ-VAE, fine-tune its decoders, train the top prior "
        "and both upsamplers with the "
        "default preset, and bundle them into WORK/model. Stopped runs resume where they were. "
        "See docs/MODELS.md for how long each stage takes.",
    )
    parser.add_argument("--work", default="default-model-work", help="working folder (default "
                        "./default-model-work)")  # fmt: skip
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="default",
                        help="'default' is the shipped model; 'tiny' runs it in seconds")  # fmt: skip
    parser.add_argument("--only", choices=STAGES, help="run one stage (the decoder and prior stages may "
                        "run at the same time in separate processes)")  # fmt: skip
    parser.add_argument(
        "--install", action="store_true", help="copy the finished model to assets/default-model"
    )
    parser.add_argument("--install-to", default=str(ASSETS_MODEL), help=argparse.SUPPRESS)
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.set_defaults(run=cmd_train_default)
