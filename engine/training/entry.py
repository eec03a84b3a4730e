"""`cocompose train vqvae|prior|upsampler`: set up a run (new, fine-tuned or resumed) and train it.

A new run resolves its settings once (preset, `--set`, `--steps`, `--batch`, vocabulary from the data)
and writes them to RUN_DIR/run.json; `--resume` rebuilds everything from that file and the latest
checkpoint, so the resumed run continues exactly where the first one stopped.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine import checkpoint
from engine.data.code_cache import CodeCache
from engine.data.crop_labels import CropLabeller
from engine.data.dataset import CropDataset
from engine.data.metadata import read_metadata
from engine.data.vocabulary import Vocabulary, extend, official_lists, vocabulary_from_data
from engine.prior.add_clock import CLOCK_FIELDS, with_beat_clock
from engine.prior.builders import build_prior, prior_config
from engine.prior.config import config_from_dict, config_to_dict
from engine.prior.deepen import DEPTH_FIELDS, with_depth
from engine.prior.repattern import PATTERN_FIELDS, with_attention_pattern
from engine.training import distributed_setup, loop, reporting, run_state
from engine.training.config import TrainConfig, presets_for
from engine.training.overrides import apply_overrides, split_assignment
from engine.training.prior_task import (
    PriorTask,
    init_embeddings_,
    label_config,
    timing_range,
    vqvae_hps,
    with_label_rows,
)
from engine.training.rekey import changed_levels, code_tables, rekey
from engine.training.vqvae_task import VQVAETask, estimate_bandwidth, init_codebooks_
from engine.vqvae import VQVAE, VQVAEConfig, losses
from engine.vqvae.config import DECODER_SIZE_FIELDS, OBJECTIVE_FIELDS
from engine.vqvae.grow import decoder_size_changes, grow_decoders

KINDS = ("vqvae", "prior", "upsampler")
# What a VQ-VAE fine-tune may change: its loss weights, and its decoders' size (grown, never shrunk).
FINE_TUNE_FIELDS = OBJECTIVE_FIELDS | DECODER_SIZE_FIELDS


@dataclass(frozen=True)
class TrainRequest:
    kind: str
    data_dir: Path
    run_dir: Path
    preset: str | None = None
    settings: tuple[str, ...] = ()
    steps: int | None = None
    batch_size: int | None = None
    resume: bool = False
    from_model: Path | None = None
    vqvae: Path | None = None
    # With from_model: the VQ-VAE that model was trained on, when `vqvae` has retrained levels of it; the
    # model's code rows are re-keyed to the new codes before the fine-tune (engine/training/rekey.py).
    rekey_from: Path | None = None
    level: int | None = None
    ids_dir: Path | None = None
    metadata: Path | None = None
    device: str | None = None


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _train_config(request: TrainRequest, train: TrainConfig) -> TrainConfig:
    if request.steps is not None:
        train = replace(train, steps=request.steps)
    if request.batch_size is not None:
        train = replace(train, batch_size=request.batch_size)
    return train


def _resolve_settings(
    request: TrainRequest, model_preset, train: TrainConfig, fixed_shape: bool, adjustable=frozenset()
):
    """Apply `--set` to (train config, model config). A loaded model's shape cannot change; only its
    `adjustable` fields (the VQ-VAE's loss weights, a prior's attention pattern) may."""
    resolved_train, resolved_model = apply_overrides([train, model_preset], request.settings)
    if fixed_shape:
        fixed = [name for name in asdict(model_preset) if name not in adjustable
                 and getattr(resolved_model, name) != getattr(model_preset, name)]  # fmt: skip
        if fixed:
            what = f"; of its settings only {', '.join(sorted(adjustable))} may change" if adjustable else ""
            names = ", ".join(sorted(fixed))
            raise ValueError(f"cannot set {names} when fine-tuning: the loaded model's shape is fixed{what}")
    return _train_config(request, resolved_train), resolved_model


def _check_request(request: TrainRequest) -> None:
    if request.kind not in KINDS:
        raise ValueError(f"unknown model kind {request.kind!r}; choose {', '.join(KINDS)}")
    if request.resume and (request.settings or request.preset or request.from_model or request.batch_size):
        raise ValueError("--resume continues a run with its saved settings; only --steps may change")
    if not request.resume and run_state.latest(request.run_dir) is not None:
        raise ValueError(f"{request.run_dir} already holds a run; pass --resume or choose a new --run folder")
    if request.resume and run_state.latest(request.run_dir) is None:
        raise FileNotFoundError(f"no checkpoint to resume from in {request.run_dir}")
    if request.rekey_from is not None and (request.kind == "vqvae" or request.from_model is None):
        raise ValueError(
            "--rekey re-keys the prior or upsampler given by --from; it needs --from and --vqvae"
        )
    if request.kind != "vqvae" and not request.resume and request.vqvae is None:
        raise ValueError(
            f"training a {request.kind} needs --vqvae PATH (a trained VQ-VAE in Cocompose format)"
        )


def _new_vqvae_task(request, context, say):
    preset = request.preset or "small"
    model_preset, train = presets_for("vqvae", preset)
    loaded = checkpoint.load_model(request.from_model, "vqvae") if request.from_model else None
    shape = loaded.config if loaded is not None else model_preset
    train, config = _resolve_settings(
        request, shape, train, fixed_shape=loaded is not None, adjustable=FINE_TUNE_FIELDS
    )
    if loaded is not None:
        changes = decoder_size_changes(loaded.config, config)
        if changes:
            loaded = grow_decoders(
                loaded,
                config.decoder_sizes,
                seed=train.seed,
                block_multipliers=config.decoder_block_sizes,
                block_repeats=config.decoder_block_repeat_counts,
                decoder_repeats=config.decoder_repeat_counts,
            )
            say(f"grew the decoders from {', '.join(changes)}: they decode as before")
        loaded.config = config  # loss weights only now: the shape matches
    if train.decoders_only and loaded is None:
        raise ValueError(
            "decoders_only=true fine-tunes the decoders of a trained VQ-VAE; pass --from MODEL as well"
        )
    if train.retrain_levels is not None and loaded is None:
        raise ValueError(
            "retrain_levels retrains some levels of a trained VQ-VAE (a new one trains every level); "
            "pass --from MODEL as well"
        )
    _seed_everything(train.seed)
    model = (loaded or VQVAE(config)).to(context.device)
    dataset = _vqvae_dataset(request, config, train, say)
    if loaded is None:
        bandwidth = estimate_bandwidth(dataset, train.seed)
        init_codebooks_(model, dataset, train, context.device)
    else:
        bandwidth = _saved_bandwidth(request.from_model) or estimate_bandwidth(dataset, train.seed)
    return VQVAETask(model, dataset, train, context, bandwidth), {"model": config.to_dict()}


def _saved_bandwidth(model_path) -> losses.Bandwidth | None:
    """The loss normalisers a model was trained with, so that fine-tuning keeps its objective's balance
    (the l2, spectral and commitment terms are each divided by them). Official checkpoints have none."""
    saved = checkpoint.read_settings(model_path).get("bandwidth")
    return losses.Bandwidth(**saved) if isinstance(saved, dict) else None


def _level(request: TrainRequest, levels: int) -> int:
    if request.kind == "prior":
        return levels - 1
    level = 0 if request.level is None else request.level
    if not 0 <= level < levels - 1:
        raise ValueError(f"an upsampler's --level must be in 0..{levels - 2} for this {levels}-level VQ-VAE")
    return level


def _fine_tune_prior(request, vqvae, level, records):
    prior = checkpoint.load_model(request.from_model, "prior")
    cfg = prior.config
    if cfg.level != level or cfg.l_bins != vqvae.config.l_bins:
        raise ValueError(
            f"{request.from_model} is a level-{cfg.level} prior over {cfg.l_bins} codes; it does not fit "
            f"level {level} of the VQ-VAE ({vqvae.config.l_bins} codes)"
        )
    if cfg.labels is None:
        raise ValueError(f"{request.from_model} takes no artist/genre labels; it cannot be fine-tuned here")
    settings = checkpoint.read_settings(request.from_model)
    if "vocabulary" in settings:
        base = Vocabulary.from_dict(settings["vocabulary"])
    else:
        ids_dir = request.ids_dir or Path(request.from_model).parent
        base = official_lists(ids_dir, cfg.single_enc_dec, cfg.labels.n_artists, cfg.labels.n_genres)
    vocabulary = extend(base, records, cfg.labels.n_artists, cfg.labels.n_genres)
    return with_label_rows(prior, vocabulary.n_artists, vocabulary.n_genres), vocabulary


def _repatterned(prior, settings: tuple[str, ...], hparams, say):
    """The loaded prior with the attention pattern that `--set attn_order=...` / `blocks=...` name (a
    preset's values are not applied: they need not be the loaded model's)."""
    named = {split_assignment(s)[0] for s in settings} & PATTERN_FIELDS
    if not named:
        return prior
    changes = {name: getattr(hparams, name) for name in named}
    repatterned = with_attention_pattern(prior, **changes)
    if repatterned is not prior:
        funcs = list(repatterned.config.transformer.attn_funcs)
        say(f"attention pattern now {funcs} over {repatterned.config.transformer.blocks} blocks")
    return repatterned


def _deepened(prior, settings: tuple[str, ...], hparams, say):
    """The loaded prior with the `--set prior_depth=...` layers, the new ones starting as identities."""
    if not {split_assignment(s)[0] for s in settings} & DEPTH_FIELDS:
        return prior
    deepened = with_depth(prior, hparams.prior_depth)
    if deepened is not prior:
        depth = deepened.config.transformer.depth
        added = depth - prior.config.transformer.depth
        say(f"{added} layers added on top ({depth} in all), each starting as an identity")
    return deepened


def _clocked(prior, settings: tuple[str, ...], hparams, say):
    """The loaded prior with the beat clock that `--set beat_bins=... --set bar_beats=...` name."""
    if not {split_assignment(s)[0] for s in settings} & CLOCK_FIELDS:
        return prior
    clocked = with_beat_clock(prior, hparams.beat_bins, hparams.bar_beats)
    if clocked is not prior:
        say(f"beat clock added: {hparams.beat_bins} phase bins, up to {hparams.bar_beats} beats per bar")
    return clocked


def _vqvae_dataset(request, config: VQVAEConfig, train: TrainConfig, say) -> CropDataset:
    """Crops of the VQ-VAE's length at its rate, for a new run and a resumed one alike."""
    return CropDataset(
        request.data_dir,
        config.sample_rate,
        config.sample_length,
        request.metadata,
        say,
        start_share=train.start_share,
    )


def _new_prior_task(request, context, say):
    vqvae = checkpoint.load_model(request.vqvae, "vqvae").to(context.device)
    level = _level(request, vqvae.config.levels)
    records = read_metadata(request.data_dir, request.metadata)
    model_preset, train = presets_for(request.kind, request.preset or "small")
    train, hparams = _resolve_settings(
        request,
        model_preset,
        train,
        fixed_shape=request.from_model is not None,
        adjustable=PATTERN_FIELDS | CLOCK_FIELDS | DEPTH_FIELDS,
    )
    _seed_everything(train.seed)
    if request.from_model is not None:
        prior, vocabulary = _fine_tune_prior(request, vqvae, level, records)
        say(f"fine-tuning {request.from_model}: new artists {list(vocabulary.new_artists)}")
        prior = _deepened(prior, request.settings, hparams, say)
        prior = _repatterned(prior, request.settings, hparams, say)
        prior = _clocked(prior, request.settings, hparams, say)
    else:
        vocabulary = vocabulary_from_data(records, v3=hparams.labels_v3)
        hps = hparams.to_hps(level, vocabulary.n_genres, vocabulary.n_artists)
        prior = init_embeddings_(build_prior(prior_config(hps, vqvae_hps(vqvae))))
    return _prior_task(
        request, context, say, prior.to(context.device), vqvae, vocabulary, train, rekeying=True
    )


def _rekeyed(request, context, say, prior, vqvae, dataset) -> None:
    """Re-key `prior` (loaded from --from) from the codes of --rekey's VQ-VAE to those of --vqvae."""
    old_vqvae = checkpoint.load_model(request.rekey_from, "vqvae").to(context.device)

    def code_shape(model: VQVAE) -> tuple:
        return model.config.levels, model.config.l_bins, model.hop_lengths

    if code_shape(old_vqvae) != code_shape(vqvae):
        raise ValueError(
            f"--rekey {request.rekey_from} is not the same shape of VQ-VAE as --vqvae {request.vqvae} "
            "(levels, codebook size and hops must match): it cannot be the one the model was trained on"
        )
    levels = sorted(set(code_tables(prior)) & set(changed_levels(old_vqvae, vqvae)))
    if not levels:
        say("--rekey: the levels this model reads have the same codes in both VQ-VAEs; nothing to re-key")
        return
    old = CodeCache.build(dataset, old_vqvae, levels, context.device, say).codes
    new = CodeCache.build(dataset, vqvae, levels, context.device, say).codes
    rekey(prior, old, new, say)


def _prior_task(request, context, say, prior, vqvae, vocabulary, train, rekeying=False):
    cfg = prior.config
    dataset = CropDataset(
        request.data_dir,
        vqvae.config.sample_rate,
        cfg.sample_length,
        request.metadata,
        say,
        start_share=train.start_share,
        change_share=train.change_share,
    )
    if rekeying and request.rekey_from is not None:
        _rekeyed(request, context, say, prior, vqvae, dataset)
    labeller = CropLabeller(label_config(cfg, vocabulary), vocabulary, dataset, timing_range(cfg))
    if context.is_main:
        vocabulary.write(request.run_dir)
    cache = None
    if train.cache_codes:
        levels = [cfg.level] if cfg.conditioner is None else [cfg.level, cfg.level + 1]
        cache = CodeCache.build(dataset, vqvae, levels, context.device, say)
    task = PriorTask(prior, vqvae, dataset, labeller, vocabulary, train, context, code_cache=cache)
    description = {
        "model": config_to_dict(cfg),
        "vqvae": str(Path(request.vqvae).resolve()),
        "vocabulary": vocabulary.to_dict(),
    }
    if request.rekey_from is not None:
        description["rekeyed_from"] = str(Path(request.rekey_from).resolve())
    return task, description


def _resumed_task(request, context, say, run: dict):
    if run["kind"] != request.kind:
        raise ValueError(f"{request.run_dir} trains a {run['kind']}, not a {request.kind}")
    train = _train_config(request, TrainConfig(**run["train"]))
    _seed_everything(train.seed)
    if request.kind == "vqvae":
        config = VQVAEConfig.from_dict(run["model"])
        model = VQVAE(config).to(context.device)
        dataset = _vqvae_dataset(request, config, train, say)
        bandwidth = losses.Bandwidth(**run["bandwidth"])
        return VQVAETask(model, dataset, train, context, bandwidth)
    vqvae = checkpoint.load_model(run["vqvae"], "vqvae").to(context.device)
    prior = build_prior(config_from_dict(run["model"])).to(context.device)
    vocabulary = Vocabulary.from_dict(run["vocabulary"])
    request = replace(request, vqvae=Path(run["vqvae"]))
    return _prior_task(request, context, say, prior, vqvae, vocabulary, train)[0]


def train(request: TrainRequest, say=print) -> int:
    """Run the training that `request` describes; returns the process exit code (0, or 130 after Ctrl-C)."""
    _check_request(request)
    context = distributed_setup.setup(request.device)

    def say0(message: str) -> None:
        if context.is_main:
            say(message)

    try:
        run_file = request.run_dir / "run.json"
        if request.resume:
            run = json.loads(run_file.read_text())
            task = _resumed_task(request, context, say0, run)
        else:
            build = _new_vqvae_task if request.kind == "vqvae" else _new_prior_task
            task, description = build(request, context, say0)
            run = {"kind": request.kind, "train": asdict(task.train), "data_dir": str(request.data_dir)}
            run.update(description)
            if request.kind == "vqvae":
                run["bandwidth"] = task.checkpoint_extra()["bandwidth"]
            if context.is_main:
                request.run_dir.mkdir(parents=True, exist_ok=True)
                run_state.write_json(run_file, run)
        optimizer = loop.make_optimizer(task, task.train)
        start = 0
        if request.resume:
            latest = run_state.latest(request.run_dir)
            start = run_state.restore(latest, task.model, optimizer, task.companions())
            say0(f"resuming {request.run_dir} at step {start}")
        writer = (
            reporting.make_writer(request.run_dir / "logs", say0) if context.is_main else reporting.NoWriter()
        )
        settings = loop.LoopSettings(task.train, request.run_dir, context, say0)
        try:
            return loop.run(task, optimizer, settings, start, writer)
        finally:
            writer.close()
    finally:
        distributed_setup.teardown()
