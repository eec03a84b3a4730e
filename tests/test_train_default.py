"""`cocompose train-default` runs the whole default-model pipeline (here with the tiny recipe): the result
is a model folder the app loads and samples from; a rerun skips finished stages and longer steps resume."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cocompose.cli import main
from engine.api import ComposeEngine, LabelSpec
from engine.prior.labels import normalise_v2
from engine.prior.sampler import SamplingSettings
from engine.training.default_model import RECIPES, DefaultModelPipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_tiny_recipe_builds_an_installable_model_that_generates(tmp_path, capsys):
    work, target = tmp_path / "work", tmp_path / "installed"
    args = ["train-default", "--work", str(work), "--recipe", "tiny", "--install"]
    args += ["--install-to", str(target)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "corpus: 4 songs" in out and f"installed the default model in {target}" in out

    engine = ComposeEngine.load(target)
    assert engine.sample_rate == 22050 and engine.can_upsample
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
    assert out.count("already") == 5 and "training to step" not in out


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


def test_a_prior_stage_before_the_vqvae_is_refused(tmp_path, capsys):
    assert main(["train-default", "--work", str(tmp_path), "--recipe", "tiny", "--only", "prior"]) == 2
    assert "needs the trained VQ-VAE first" in capsys.readouterr().err
