"""The embedded default model in assets/: it loads by name, knows the corpus's artists and genres, and
makes audible music (not silence, not noise at full scale) from nothing, through the real service path."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from cocompose.cli import main
from cocompose.models import DEFAULT_MODEL_DIR, resolve_model
from engine import checkpoint
from engine.api import ComposeEngine, LabelSpec
from engine.bundle import BundleManifest
from engine.data.synth.artists import ARTISTS
from engine.prior.labels import normalise_v2
from engine.prior.sampler import SamplingSettings
from engine.training.default_recipe import RECIPES

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "bundle.json").is_file(), reason="no default model built"),
]


@pytest.fixture(scope="module")
def engine():
    return ComposeEngine.load(resolve_model("default"))


def test_the_default_model_knows_every_corpus_artist_and_samples_audible_music(engine):
    assert engine.can_upsample and engine.sample_rate == 16000
    assert {normalise_v2(a.name) for a in ARTISTS} <= set(engine.artists())
    spec = LabelSpec(ARTISTS[0].name, engine.genres()[-1], total_seconds=30.0)
    n = round(2 * engine.codes_per_second)
    settings = SamplingSettings(temperature=0.98)
    pieces = list(engine.generate(np.zeros(0, np.int64), n, [11, 12], spec, settings))
    codes = np.concatenate([p.codes for p in pieces], axis=1)
    assert codes.shape == (2, n) and not np.array_equal(codes[0], codes[1])
    audio, rate = engine.decode_preview(codes[0])
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rate == 16000 and len(audio) == n * 128
    assert 0.005 < rms < 0.7 and np.abs(audio).max() < 4.0


def test_one_shot_generate_with_the_default_model(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--model", "default", "--artist", ARTISTS[1].name, "--genre", "blues"]
    args += ["--seconds", "2", "--branches", "2", "--seed", "3", "--out", str(out)]
    args += ["--change", f"1:artist={ARTISTS[2].name}"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["branches"]) == 2


def test_the_shipped_model_is_the_one_train_default_builds():
    """Its recipe.json is the `default` recipe and each part was trained for the recipe's steps, so
    `cocompose train-default` rebuilds this model and docs/MODELS.md describes it."""
    recipe = RECIPES["default"]
    assert json.loads((DEFAULT_MODEL_DIR / "recipe.json").read_text()) == json.loads(
        json.dumps(asdict(recipe))
    )
    vqvae_steps = recipe.decoder_steps if recipe.decoder_steps > 0 else recipe.vqvae_steps
    if recipe.grows:
        vqvae_steps = recipe.grow_steps
        assert (
            checkpoint.load_model(DEFAULT_MODEL_DIR / "vqvae").config.decoder_multipliers
            == recipe.grow_multipliers
        )
    if recipe.trains_top_decoder:
        vqvae_steps = recipe.top_decoder_rounds[-1].steps
        config = checkpoint.load_model(DEFAULT_MODEL_DIR / "vqvae").config
        assert config.decoder_block_multipliers == recipe.top_decoder_block_multipliers
        assert config.decoder_block_repeats == recipe.top_decoder_block_repeats
    if recipe.retrains_top_level:
        vqvae_steps = recipe.top_level_steps
        log_mel = recipe.top_level_log_mel
        if recipe.tunes_top_level_decoder:
            vqvae_steps = recipe.top_level_decoder_rounds[-1].steps
            log_mel = recipe.top_level_decoder_log_mel
        if recipe.tunes_bottom_decoder:  # the reference's objective, the last stage's
            vqvae_steps, log_mel = recipe.bottom_decoder_rounds[-1].steps, 0.0
            assert (
                checkpoint.load_model(DEFAULT_MODEL_DIR / "vqvae").config.decoder_repeats
                == recipe.bottom_decoder_repeats
            )
        assert checkpoint.load_model(DEFAULT_MODEL_DIR / "vqvae").config.log_mel == log_mel
    steps = {"vqvae": vqvae_steps, "prior_default": recipe.shipped_prior_steps}
    steps.update({f"upsampler_level_{level}": recipe.shipped_upsampler_steps(level) for level in (1, 0)})
    for stem, expected in steps.items():
        assert checkpoint.read_settings(DEFAULT_MODEL_DIR / stem)["step"] == expected, stem
    prior_config = checkpoint.load_model(DEFAULT_MODEL_DIR / "prior_default", "prior").config
    if recipe.tunes_more and recipe.more_depth:
        assert prior_config.transformer.depth == recipe.more_depth
    labels = prior_config.labels
    assert labels.beat_bins == (recipe.clock_beat_bins if recipe.clocks_prior else 0)
    # and the app samples it with the label guidance and upsampler windows it was measured with
    manifest = BundleManifest.read(DEFAULT_MODEL_DIR / "bundle.json")
    assert (manifest.guidance, manifest.upsample_lookahead) == (recipe.guidance, recipe.upsample_lookahead)
    assert manifest.render_guide == recipe.render_guide
