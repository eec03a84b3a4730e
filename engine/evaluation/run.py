"""`evaluate_model`: load a model folder, walk the held-out songs once, return the model card.

Each song is read, encoded, decoded per level and scored by every prior before the next is read, so
memory holds one song (and its codes) at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from engine.bundle import MANIFEST_NAME, ModelBundle
from engine.errors import CheckpointError
from engine.evaluation.heldout import iter_songs, open_corpus
from engine.evaluation.prior_metrics import PriorEvaluator
from engine.evaluation.report import LevelMetrics, ModelCard, PriorMetrics, level_name, sc_target_db
from engine.evaluation.vqvae_metrics import VQVAEEvaluator


def check_model_folder(folder: Path) -> None:
    """A clearer message than a missing-file error for a folder that is no model at all."""
    if not folder.is_dir():
        raise CheckpointError(f"model folder not found: {folder}")
    if not (folder / MANIFEST_NAME).is_file() and not (folder / "vqvae.json").is_file():
        raise CheckpointError(
            f"{folder} is not a model folder: it has neither {MANIFEST_NAME} nor vqvae.json "
            "(see docs/SERVICE.md, 'Model folders')"
        )


def evaluate_model(
    folder: str | Path,
    data_dir: str | Path,
    top: str | None = None,
    max_windows: int | None = None,
    device: str | None = None,
    say: Callable[[str], None] = print,
) -> ModelCard:
    folder = Path(folder)
    check_model_folder(folder)
    bundle = ModelBundle.load(folder, top=top, device=device)
    dataset = open_corpus(data_dir, bundle.sample_rate, report=say)
    vqvae = VQVAEEvaluator(bundle.vqvae)
    priors = [("top", bundle.top_name, bundle.top)]
    priors += [
        ("upsampler", f"level {up.config.level}", up) for up in reversed(bundle.upsamplers or [])
    ]  # level 1 first
    scorers = [
        PriorEvaluator(
            prior, bundle.label_config(prior), bundle.names[prior.config.level], dataset, max_windows
        )
        for _, _, prior in priors
    ]
    samples = 0
    for index, audio in iter_songs(dataset):
        say(f"song {index + 1}/{len(dataset)}: {dataset.songs[index].record.path.name}")
        codes = vqvae.add(audio)
        for scorer in scorers:
            scorer.add(index, codes)
        samples += audio.shape[1]
    levels = bundle.vqvae.config.levels
    max_bits = math.log2(bundle.vqvae.config.l_bins)
    level_rows = tuple(
        LevelMetrics(
            level,
            level_name(level, levels),
            tally.spectral_convergence_db(),
            sc_target_db(level, levels),
            tally.entropy_bits(),
            max_bits,
        )
        for level, tally in enumerate(vqvae.tallies)
    )
    prior_rows = tuple(
        PriorMetrics(
            role,
            name,
            prior.config.level,
            s.tally.bits_per_token(),
            s.unigram_bits(),
            s.tally.windows,
            None if s.tally.artist_gain is None else s.tally.artist_gain.mean(),
            None if s.tally.genre_gain is None else s.tally.genre_gain.mean(),
        )
        for (role, name, prior), s in zip(priors, scorers, strict=True)
    )
    return ModelCard(
        model=str(folder),
        corpus=str(data_dir),
        songs=len(dataset),
        seconds=samples / bundle.sample_rate,
        sample_rate=bundle.sample_rate,
        levels=level_rows,
        priors=prior_rows,
    )
