"""`cocompose train-default` runs the whole default-model pipeline (here with the tiny recipe): the result
is a model folder the app loads and samples from; a rerun skips finished stages and longer steps resume."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from engine import checkpoint
from engine.api import ComposeEngine, LabelSpec
from engine.prior.labels import normalise_v2
from engine.prior.sampler import SamplingSettings
from engine.training.default_model import DefaultModelPipeline
from engine.training.default_recipe import RECIPES, DecoderRound
from engine.training.rekey import changed_levels

pytestmark = pytest.mark.usefixtures("one_thread")


def _through_vqvae(work, recipe):
    """A pipeline in `work` with its corpus and VQ-VAE stages run, for the stages that follow them."""
    pipeline = DefaultModelPipeline(work, recipe, say=print)
    for stage in ("corpus", "vqvae"):
        assert pipeline.run(only=stage) == 0
    return pipeline


def _refused_then_run(pipeline, stage: str, needs: str, capsys) -> dict[str, str]:
    """Asked for `stage` before `needs`, the pipeline refuses; run whole, it trains every stage. Returns
    each stage's printed line that holds its `cocompose train` command."""
    with pytest.raises(ValueError, match=f"{stage} needs {needs} first"):
        pipeline.run(only=stage)
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    return {line.split(":")[0]: line for line in out.splitlines() if "cocompose train" in line}


def _assert_same_codes(vqvae, other) -> None:
    """Both VQ-VAEs encode the same audio to the same codes at every level."""
    audio = torch.randn(1, 8192, generator=torch.Generator().manual_seed(3)) * 0.3
    for a, b in zip(vqvae.encode(audio), other.encode(audio), strict=True):
        assert torch.equal(a, b)


def test_the_tiny_recipe_builds_an_installable_model_that_generates(tmp_path, capsys):
    work, target = tmp_path / "work", tmp_path / "installed"
    args = ["train-default", "--work", str(work), "--recipe", "tiny", "--install"]
    args += ["--install-to", str(target)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "corpus: 4 songs" in out and f"installed the default model in {target}" in out

    engine = ComposeEngine.load(target)
    assert engine.sample_rate == 22050 and engine.can_upsample
    assert engine.recommended_guidance == RECIPES["tiny"].guidance > 0  # the recipe's, via bundle.json
    assert engine.bundle.upsample_lookahead == RECIPES["tiny"].upsample_lookahead > 0  # and its windows
    assert engine.bundle.render_guide == RECIPES["tiny"].render_guide is not None  # and its render guide
    rows = [json.loads(line) for line in (work / "corpus" / "metadata.jsonl").read_text().splitlines()]
    # Names are listed in the official lists' normalised spelling; every corpus name is there.
    assert {normalise_v2(row["artist"]) for row in rows} <= set(engine.artists())
    assert {normalise_v2(row["genre"]) for row in rows} <= set(engine.genres())
    spec = LabelSpec(rows[0]["artist"], rows[0]["genre"], total_seconds=12.0)
    pieces = list(engine.generate(np.zeros(0, np.int64), 6, [1, 2], spec, SamplingSettings(temperature=1.0)))
    codes = np.concatenate([p.codes for p in pieces], axis=1)
    assert codes.shape == (2, 6)
    audio, rate = engine.decode_preview(codes[0])
    assert rate == 22050 and np.isfinite(audio).all()

    # A rerun finds every stage done; asking for more prior steps resumes only that stage.
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("already") == 14 and "training to step" not in out


def test_stages_can_train_on_the_first_songs_only(tmp_path, capsys):
    """vqvae_songs / upsampler_songs: those stages read a metadata file of the corpus's first rows, the
    top prior reads them all; a subset that lacks an artist the priors must know is refused."""
    recipe = replace(RECIPES["tiny"], songs=7, vqvae_songs=2, upsampler_songs=6)
    pipeline = DefaultModelPipeline(tmp_path, recipe, say=print)
    for stage in ("corpus", "vqvae", "prior", "upsampler1"):
        assert pipeline.run(only=stage) == 0
    out = capsys.readouterr().out
    corpus = tmp_path / "corpus"
    rows = (corpus / "metadata.jsonl").read_text().splitlines(keepends=True)
    assert (corpus / "metadata-first-2.jsonl").read_text() == "".join(rows[:2])
    assert (corpus / "metadata-first-6.jsonl").read_text() == "".join(rows[:6])
    commands = {line.split(":")[0]: line for line in out.splitlines() if "cocompose train" in line}
    assert f"--metadata {corpus / 'metadata-first-2.jsonl'}" in commands["vqvae"]
    assert "--metadata" not in commands["prior"]
    assert f"--metadata {corpus / 'metadata-first-6.jsonl'}" in commands["upsampler1"]

    narrow = DefaultModelPipeline(tmp_path, replace(recipe, upsampler_songs=1), say=print)
    with pytest.raises(ValueError, match="first 1 songs lack artist"):
        narrow.run(only="upsampler0")


def test_the_decoder_stage_fine_tunes_the_vqvae_which_ships_with_its_codes_unchanged(tmp_path, capsys):
    # Without a grow stage, so that the fine-tuned decoders are what ships.
    recipe = replace(
        RECIPES["tiny"], decoder_steps=3, decoder_warmup=1, grow_multipliers=None, top_decoder_rounds=()
    )
    pipeline = _through_vqvae(tmp_path, recipe)
    with pytest.raises(ValueError, match="needs the fine-tuned decoders first"):
        pipeline.run(only="bundle")
    # A run of 2 steps, then a recipe of 3: the stage resumes with the run's own settings.
    assert (
        DefaultModelPipeline(tmp_path, replace(recipe, decoder_steps=2), say=print).run(only="decoders") == 0
    )
    stages = ("decoders", "prior", "starts", "clock", "upsampler1", "upsampler0", "upsampler1_tune",
              "upsampler0_tune")  # fmt: skip
    for stage in (*stages, "bundle"):
        assert pipeline.run(only=stage) == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("decoders: training"))
    base = tmp_path / "runs" / "vqvae" / "model"
    assert f"--from {base} --set decoders_only=true --set seed=1" in command
    assert "--set warmup_steps=1 --set decay_start=1 --set decay_steps=1" in command
    assert "decoders: resuming at step 2 to step 3" in out

    run = json.loads((tmp_path / "runs" / "decoders" / "run.json").read_text())
    assert run["train"]["decoders_only"] and run["train"]["decay_steps"] == 1
    shipped = ComposeEngine.load(tmp_path / "model").bundle.vqvae
    trained, tuned = (
        checkpoint.load_model(tmp_path / "runs" / r / "model", "vqvae") for r in ("vqvae", "decoders")
    )
    assert torch.equal(shipped.decoders[0].out.weight, tuned.decoders[0].out.weight)
    assert not torch.equal(shipped.decoders[0].out.weight, trained.decoders[0].out.weight)
    _assert_same_codes(shipped, trained)  # so the priors, trained on the VQ-VAE stage's codes, still fit


def test_the_grow_stage_grows_the_fine_tuned_decoders_and_ships_them_with_the_codes_unchanged(
    tmp_path, capsys
):
    recipe = replace(RECIPES["tiny"], grow_multipliers=(2, 1, 1), grow_steps=2, grow_warmup=1)
    pipeline = _through_vqvae(tmp_path, recipe)
    with pytest.raises(ValueError, match="grow needs the fine-tuned decoders first"):
        pipeline.run(only="grow")
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("grow: training"))
    assert f"--from {tmp_path / 'runs' / 'decoders' / 'model'} --set decoders_only=true" in command
    assert "--set decoder_multipliers=2,1,1 --set seed=2 --set warmup_steps=1 --set decay_start=1" in command
    shipped = ComposeEngine.load(tmp_path / "model").bundle.vqvae
    assert shipped.config.decoder_multipliers == (2, 1, 1)
    assert json.loads((tmp_path / "model" / "recipe.json").read_text())["grow_multipliers"] == [2, 1, 1]
    trained = checkpoint.load_model(tmp_path / "runs" / "vqvae" / "model", "vqvae")
    _assert_same_codes(shipped, trained)


def test_the_top_decoder_stage_grows_its_low_rate_blocks_trains_it_alone_in_rounds_and_ships_it(
    tmp_path, capsys
):
    rounds = (
        DecoderRound(2, seed=3, block_multipliers=(1, 2, 2)),
        DecoderRound(3, seed=5, block_repeats=(1, 2, 2), lr=3e-4),
    )
    recipe = replace(RECIPES["tiny"], top_decoder_rounds=rounds, top_decoder_warmup=1)
    pipeline = _through_vqvae(tmp_path, recipe)
    assert pipeline.run(only="decoders") == 0
    with pytest.raises(ValueError, match="top_decoder needs the grown decoders first"):
        pipeline.run(only="top_decoder")
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    commands = {
        stage: next(line for line in out.splitlines() if line.startswith(f"{stage}: training"))
        for stage in ("top_decoder1", "top_decoder2")
    }
    assert (
        f"--from {tmp_path / 'runs' / 'grow' / 'model'} --set decoders_only=true" in commands["top_decoder1"]
    )
    assert (
        "--set decoder_block_multipliers=1,2,2 --set decoder_levels=2 --set seed=3"
        in commands["top_decoder1"]
    )
    assert (
        f"--from {tmp_path / 'runs' / 'top_decoder1' / 'model'} --set decoders_only=true"
        in commands["top_decoder2"]
    )
    assert (
        "--set decoder_block_repeats=1,2,2 --set lr=0.0003 --set decoder_levels=2 --set seed=5"
        in commands["top_decoder2"]
    )
    assert "--set decay_steps=2" in commands["top_decoder2"]
    shipped = ComposeEngine.load(tmp_path / "model").bundle.vqvae
    grown = checkpoint.load_model(tmp_path / "runs" / "grow" / "model", "vqvae")
    assert shipped.config.decoder_block_multipliers == recipe.top_decoder_block_multipliers == (1, 2, 2)
    assert shipped.config.decoder_block_repeats == recipe.top_decoder_block_repeats == (1, 2, 2)
    assert shipped.config.decoder_multipliers == grown.config.decoder_multipliers
    assert checkpoint.read_settings(tmp_path / "model" / "vqvae")["step"] == 3
    recipe_json = json.loads((tmp_path / "model" / "recipe.json").read_text())
    assert recipe_json["top_decoder_rounds"][1] == {
        "steps": 3, "seed": 5, "block_multipliers": None, "block_repeats": [1, 2, 2], "lr": 3e-4,
        "decoder_repeats": None,
    }  # fmt: skip
    # Only the top decoder trained: the bottom decoder, and the codes, are the grow stage's.
    for a, b in zip(shipped.decoders[0].parameters(), grown.decoders[0].parameters(), strict=True):
        assert torch.equal(a, b)
    _assert_same_codes(shipped, grown)


def test_the_bottom_decoder_stage_trains_the_bottom_decoder_alone_with_the_reference_objective(
    tmp_path, capsys
):
    """bottom_decoder trains the bottom decoder alone, round after round, from the VQ-VAE the stages before
    left (here the top decoder's), without the log-mel term they may have used; the bundle ships its last
    round, whose codes, and every other decoder, are that VQ-VAE's."""
    rounds = (DecoderRound(2, seed=29), DecoderRound(2, seed=31, lr=1e-4, decoder_repeats=(2, 1, 1)))
    recipe = replace(RECIPES["tiny"], bottom_decoder_rounds=rounds)
    assert recipe.bottom_decoder_repeats == (2, 1, 1)
    commands = _refused_then_run(
        _through_vqvae(tmp_path, recipe), "bottom_decoder", "the trained top decoder", capsys
    )
    runs = tmp_path / "runs"
    assert (
        f"--from {runs / 'top_decoder1' / 'model'} --set decoders_only=true --set decoder_levels=0 "
        "--set log_mel=0 --set seed=29" in commands["bottom_decoder1"]
    )
    assert (
        f"--from {runs / 'bottom_decoder1' / 'model'} --set decoders_only=true --set decoder_repeats=2,1,1 "
        "--set lr=0.0001 --set decoder_levels=0 --set log_mel=0 --set seed=31" in commands["bottom_decoder2"]
    )
    last = load_file(str(runs / "bottom_decoder2" / "model.safetensors"))
    shipped = load_file(str(tmp_path / "model" / "vqvae.safetensors"))
    assert last.keys() == shipped.keys() and all(torch.equal(shipped[k], last[k]) for k in last)
    before = load_file(str(runs / "top_decoder1" / "model.safetensors"))
    # The second round deepened the bottom decoder (new weights) and nothing else.
    moved = {
        ".".join(k.split(".")[:2])
        for k in shipped
        if k not in before or not torch.equal(shipped[k], before[k])
    }
    assert moved == {"decoders.0"}
    config = ComposeEngine.load(tmp_path / "model").bundle.vqvae.config
    assert config.log_mel == 0.0 and config.decoder_repeats == (2, 1, 1)


def test_the_starts_stage_fine_tunes_the_top_prior_on_songs_starts_and_ships_it(tmp_path, capsys):
    recipe = replace(RECIPES["tiny"], clock_steps=0)  # starts_steps=2, starts_warmup=1; ships the starts run
    pipeline = DefaultModelPipeline(tmp_path, recipe, say=print)
    for stage in ("corpus", "vqvae", "decoders"):
        assert pipeline.run(only=stage) == 0
    with pytest.raises(ValueError, match="starts needs the trained top prior first"):
        pipeline.run(only="starts")
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("starts: training"))
    assert f"--from {tmp_path / 'runs' / 'prior' / 'model'} --set start_share=0.5 --set lr=0.0003" in command
    assert "--set warmup_steps=1 --set decay_start=1 --set decay_steps=1" in command
    run = json.loads((tmp_path / "runs" / "starts" / "run.json").read_text())
    assert run["train"]["start_share"] == 0.5 and run["train"]["decay_steps"] == 1

    shipped = checkpoint.load_model(tmp_path / "model" / "prior_default", "prior")
    trained, tuned = (
        checkpoint.load_model(tmp_path / "runs" / r / "model", "prior") for r in ("prior", "starts")
    )
    for name, weight in shipped.state_dict().items():
        assert torch.equal(weight, tuned.state_dict()[name]), name
    assert any(not torch.equal(w, trained.state_dict()[n]) for n, w in shipped.state_dict().items())


def test_the_clock_stage_gives_the_starts_tuned_prior_a_beat_clock_and_ships_it(tmp_path, capsys):
    recipe = RECIPES["tiny"]  # clock_steps=2: 8 phase bins, bars of up to 4 beats, input noise 0.1
    pipeline = DefaultModelPipeline(tmp_path, recipe, say=print)
    for stage in ("corpus", "vqvae", "decoders", "prior"):
        assert pipeline.run(only=stage) == 0
    with pytest.raises(ValueError, match="clock needs the starts-tuned prior first"):
        pipeline.run(only="clock")
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    command = next(line for line in out.splitlines() if line.startswith("clock: training"))
    assert f"--from {tmp_path / 'runs' / 'starts' / 'model'} --set beat_bins=8 --set bar_beats=4" in command
    assert "--set input_noise=0.1 --set start_share=0.5" in command
    shipped = checkpoint.load_model(tmp_path / "model" / "prior_default", "prior")
    assert (shipped.config.labels.beat_bins, shipped.config.labels.bar_beats) == (8, 4)
    tuned = checkpoint.load_model(tmp_path / "runs" / "clock" / "model", "prior")
    for name, weight in shipped.state_dict().items():
        assert torch.equal(weight, tuned.state_dict()[name]), name
    # The corpus's songs give their tempi, so the model knows each genre's usual one.
    tempi = checkpoint.read_settings(tmp_path / "model" / "prior_default")["genre_tempi"]
    metadata = [
        json.loads(line) for line in (tmp_path / "corpus" / "metadata.jsonl").read_text().splitlines()
    ]
    assert set(tempi) == {row["genre"] for row in metadata}
    assert all(tempi[row["genre"]][1] == row["beats_per_bar"] for row in metadata)


def test_the_upsampler_tune_stages_fine_tune_each_upsampler_on_every_song_in_rounds_and_ship_the_last(
    tmp_path, capsys
):
    """Each round starts from the one before with its own seed, warm-up and decay; the bundle ships the
    last round; the first stage read a subset of the songs, the rounds read them all."""
    # the first stage reads 6 of the 7 songs; two rounds of 2 steps each (warm-up 1)
    recipe = replace(RECIPES["tiny"], songs=7, upsampler_songs=6, upsampler_tune_rounds=(2, 2))
    commands = _refused_then_run(
        _through_vqvae(tmp_path, recipe), "upsampler0_tune", "the trained level-0 upsampler", capsys
    )
    runs = tmp_path / "runs"
    for level in (1, 0):
        assert commands[f"upsampler{level}"].endswith("metadata-first-6.jsonl")
        for round_, base in enumerate((f"upsampler{level}", f"upsampler{level}_tune1")):
            command, seed = commands[f"upsampler{level}_tune{round_ + 1}"], 11 + level + 10 * round_
            assert f"--from {runs / base / 'model'} --set lr=0.0006 --set seed={seed}" in command
            assert "--set warmup_steps=1 --set decay_start=1 --set decay_steps=1" in command
            assert "--metadata" not in command  # every song
            run = json.loads((runs / f"upsampler{level}_tune{round_ + 1}" / "run.json").read_text())
            assert run["train"]["decay_steps"] == 1 and run["train"]["seed"] == seed

        shipped = checkpoint.load_model(tmp_path / "model" / f"upsampler_level_{level}", "prior")
        trained, first, last = (
            checkpoint.load_model(runs / r / "model", "prior").state_dict()
            for r in (f"upsampler{level}", f"upsampler{level}_tune1", f"upsampler{level}_tune2")
        )
        for name, weight in shipped.state_dict().items():
            assert torch.equal(weight, last[name]), name
        for earlier in (trained, first):
            assert any(not torch.equal(w, earlier[n]) for n, w in shipped.state_dict().items())


def test_a_prior_stage_before_the_vqvae_is_refused(tmp_path, capsys):
    assert main(["train-default", "--work", str(tmp_path), "--recipe", "tiny", "--only", "prior"]) == 2
    assert "needs the trained VQ-VAE first" in capsys.readouterr().err


def test_the_top_level_stage_retrains_the_top_level_and_ships_it_with_the_prior_and_upsampler_rekeyed_to_it(
    tmp_path, capsys
):
    """top_level retrains the top level from the top decoder's VQ-VAE with a log-mel term, and
    top_level_decoder trains its decoder alone on, round after round, with a stronger one; prior_rekey and
    upsampler1_rekey re-key the clocked prior and the last round of the middle upsampler to its codes and
    fine-tune them; bottom_decoder then trains the bottom decoder alone; the bundle ships those four, and
    the bottom upsampler and the middle level as they were."""
    bottom = (DecoderRound(2, seed=29),)
    recipe = replace(RECIPES["tiny"], top_level_steps=2, top_level_warmup=1, bottom_decoder_rounds=bottom)
    pipeline = _through_vqvae(tmp_path, recipe)
    with pytest.raises(ValueError, match="top_level needs the trained top decoder first"):
        pipeline.run(only="top_level")
    assert pipeline.run() == 0
    out = capsys.readouterr().out
    commands = {line.split(":")[0]: line for line in out.splitlines() if "cocompose train" in line}
    runs = tmp_path / "runs"
    assert (
        f"--from {runs / 'top_decoder1' / 'model'} --set retrain_levels=2 --set log_mel=0.3"
        in commands["top_level"]
    )
    new, old = runs / "top_level" / "model", runs / "vqvae" / "model"
    assert f"--from {runs / 'clock' / 'model'} --set beat_bins=8 --set bar_beats=4" in commands["prior_rekey"]
    assert f"--from {runs / 'upsampler1_tune2' / 'model'} --set lr=0.0006" in commands["upsampler1_rekey"]
    for stage in ("prior_rekey", "upsampler1_rekey"):
        assert f"--vqvae {new} --rekey {old}" in commands[stage]
        assert json.loads((runs / stage / "run.json").read_text())["rekeyed_from"] == str(old.resolve())
    assert "level 2: re-keyed 1 code table(s)" in out

    shipped = ComposeEngine.load(tmp_path / "model").bundle
    first, second = runs / "top_level_decoder1", runs / "top_level_decoder2"
    assert (
        f"--from {runs / 'top_level' / 'model'} --set decoders_only=true --set decoder_levels=2 "
        "--set log_mel=3.0 --set seed=17" in commands["top_level_decoder1"]
    )
    assert (
        f"--from {first / 'model'} --set decoders_only=true --set lr=0.0001 --set decoder_levels=2 "
        "--set log_mel=3.0 --set seed=19" in commands["top_level_decoder2"]
    )
    sources = {"vqvae": "bottom_decoder1", "prior_default": "prior_rekey",
               "upsampler_level_1": "upsampler1_rekey", "upsampler_level_0": "upsampler0_tune2"}  # fmt: skip
    for stem, run in sources.items():
        want = load_file(str(runs / run / "model.safetensors"))
        got = load_file(str(tmp_path / "model" / f"{stem}.safetensors"))
        assert want.keys() == got.keys() and all(torch.equal(got[k], want[k]) for k in want), stem
    assert checkpoint.load_model(second / "model", "vqvae").config.log_mel == 3.0
    decoded = checkpoint.load_model(runs / "top_decoder1" / "model", "vqvae")
    assert changed_levels(decoded, shipped.vqvae) == [2]  # only the top level's codes are new
    # ... and the decoder stage kept them (the re-keyed models read them), training the top decoder alone
    retrained = load_file(str(new.with_suffix(".safetensors")))
    tuned = load_file(str(second / "model.safetensors"))
    moved = {".".join(k.split(".")[:2]) for k in tuned if not torch.equal(tuned[k], retrained[k])}
    assert moved == {"decoders.2"}
    assert f"--from {second / 'model'} --set decoders_only=true" in commands["bottom_decoder1"]


def test_the_duets_stage_fine_tunes_the_clocked_prior_on_duets_across_their_changes_and_ships_it(
    tmp_path, capsys
):
    """duets synthesises a corpus of duets beside the corpus and fine-tunes the prior the stages before
    left (here the clocked one), its clock's settings kept, with a share of crops across the changes; the
    bundle ships that prior; a rerun finds the duets written and the stage trained."""
    recipe = replace(RECIPES["tiny"], duets_steps=2)
    pipeline = _through_vqvae(tmp_path, recipe)
    commands = _refused_then_run(pipeline, "duets", "the prior with its beat clock", capsys)
    runs, duets = tmp_path / "runs", tmp_path / "duets"
    assert (
        f"--data {duets} --run {runs / 'duets'} --preset tiny --from {runs / 'clock' / 'model'} "
        "--set beat_bins=8 --set bar_beats=4 --set input_noise=0.1 --set start_share=0.25 "
        "--set change_share=0.5 --set lr=0.0003 --set seed=47" in commands["duets"]
    )
    assert f"--vqvae {runs / 'vqvae' / 'model'}" in commands["duets"]
    rows = [json.loads(line) for line in (duets / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == recipe.duet_songs and all(len(row["artist_changes"]) == 1 for row in rows)
    corpus = [json.loads(line) for line in (tmp_path / "corpus" / "metadata.jsonl").read_text().splitlines()]
    assert not any("artist_changes" in row for row in corpus)  # the other stages' corpus has none
    want = load_file(str(runs / "duets" / "model.safetensors"))
    got = load_file(str(tmp_path / "model" / "prior_default.safetensors"))
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert checkpoint.load_model(tmp_path / "model" / "prior_default", "prior").config.labels.beat_bins == 8

    assert pipeline.run(only="duets") == 0
    out = capsys.readouterr().out
    assert f"duets: {duets} is already there" in out and "duets: trained for 2 steps already" in out


def test_the_prior_more_stage_fine_tunes_the_prior_on_the_corpus_and_more_songs_and_ships_it(
    tmp_path, capsys
):
    """prior_more synthesises more songs of another seed beside the corpus and fine-tunes the prior the
    stages before left (here the clocked one, its clock's settings kept) on the songs of both, read through
    one metadata file; the bundle ships that prior; a rerun finds the songs written and the stage trained."""
    recipe = replace(RECIPES["tiny"], more_steps=2, more_depth=6)
    pipeline = _through_vqvae(tmp_path, recipe)
    commands = _refused_then_run(pipeline, "prior_more", "the prior with its beat clock", capsys)
    runs, more, both = tmp_path / "runs", tmp_path / "more", tmp_path / "metadata-corpus-and-more.jsonl"
    assert (
        f"--data {tmp_path} --run {runs / 'prior_more'} --preset tiny --from {runs / 'clock' / 'model'} "
        "--set beat_bins=8 --set bar_beats=4 --set input_noise=0.1 --set start_share=0.5 "
        f"--set prior_depth=6 --set lr={recipe.more_lr} --set seed={recipe.more_seed}"
        in commands["prior_more"]
    )
    assert f"--metadata {both}" in commands["prior_more"]
    corpus_rows = (tmp_path / "corpus" / "metadata.jsonl").read_text().splitlines()
    more_rows = (more / "metadata.jsonl").read_text().splitlines()
    assert len(more_rows) == recipe.more_songs and json.loads(more_rows[0])["seed"] == recipe.more_corpus_seed
    rows = [json.loads(line) for line in both.read_text().splitlines()]
    assert len(rows) == len(corpus_rows) + len(more_rows)
    assert all((tmp_path / row["path"]).is_file() for row in rows)  # every song, from both folders
    assert {row["path"].split("/")[0] for row in rows} == {"corpus", "more"}
    want = load_file(str(runs / "prior_more" / "model.safetensors"))
    got = load_file(str(tmp_path / "model" / "prior_default.safetensors"))
    assert all(torch.equal(got[k], want[k]) for k in want)
    base_depth = checkpoint.load_model(runs / "clock" / "model", "prior").config.transformer.depth
    shipped = checkpoint.load_model(tmp_path / "model" / "prior_default", "prior").config.transformer
    assert base_depth < shipped.depth == 6, "deepened on the way"

    assert pipeline.run(only="prior_more") == 0
    out = capsys.readouterr().out
    assert f"prior_more: {more} is already there" in out and "prior_more: trained for 2 steps already" in out


def test_the_upsampler_deep_stages_grow_each_upsampler_as_it_was_left_and_ship_it(tmp_path, capsys):
    """upsampler{1,0}_deep deepen the last run of each upsampler (the middle one re-keyed where the top level
    was retrained, else its last fine-tuning round) and fine-tune it; the bundle ships the deepened pair."""
    deep = {"upsampler1_deep_steps": 2, "upsampler0_deep_steps": 2, "upsampler_deep_warmup": 1}
    recipe = replace(RECIPES["tiny"], **deep)
    pipeline = _through_vqvae(tmp_path, recipe)
    commands = _refused_then_run(pipeline, "upsampler0_deep", "the fine-tuned upsamplers", capsys)
    runs = tmp_path / "runs"
    last_round = len(recipe.upsampler_tune_rounds)
    for level in (1, 0):
        stage = f"upsampler{level}_deep"
        base = runs / f"upsampler{level}_tune{last_round}" / "model"
        assert f"--from {base} " in commands[stage] and f"--level {level}" in commands[stage]
        assert f"--set prior_depth={recipe.upsampler_deep_depth}" in commands[stage]
        assert f"--set seed={recipe.upsampler_deep_seed + level}" in commands[stage]
        want = load_file(str(runs / stage / "model.safetensors"))
        got = load_file(str(tmp_path / "model" / f"upsampler_level_{level}.safetensors"))
        assert want.keys() == got.keys() and all(torch.equal(got[k], want[k]) for k in want), stage
        shipped = checkpoint.load_model(tmp_path / "model" / f"upsampler_level_{level}", "prior").config
        tuned = checkpoint.load_model(base, "prior").config
        assert tuned.transformer.depth < shipped.transformer.depth == recipe.upsampler_deep_depth
        assert checkpoint.read_settings(tmp_path / "model" / f"upsampler_level_{level}")["step"] == 2
