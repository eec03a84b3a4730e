"""`cocompose train prior|upsampler`: learns, resumes bit-exactly, and fine-tunes a converted official
prior with a new artist."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from engine import checkpoint
from engine.prior.labels import load_artist_genre_ids
from tests.reference import FIXTURE_DIR, IDS_DIR, require_fixture
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("prior") / "data", songs=3, seconds=2.0)


@pytest.fixture(scope="module")
def vqvae(corpus):
    run = corpus.parent / "vqvae"
    torch.set_num_threads(1)
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(run), "--preset", "tiny",
                 "--steps", "1"]) == 0  # fmt: skip
    return run / "model"


def _train(kind, corpus, vqvae, run_dir, *extra) -> int:
    return main(["train", kind, "--data", str(corpus), "--run", str(run_dir), "--vqvae", str(vqvae), *extra])


def test_a_tiny_prior_learns_and_saves_its_artist_names(corpus, vqvae, tmp_path, capsys):
    run = tmp_path / "prior"
    assert _train("prior", corpus, vqvae, run, "--preset", "tiny", "--steps", "12") == 0
    losses = [float(x) for x in re.findall(r"^step \d+/12 loss ([\d.e+-]+)", capsys.readouterr().out, re.M)]
    assert len(losses) == 12 and losses[-1] < losses[0], losses
    model = checkpoint.load_model(run / "model", "prior")
    assert model.config.labels.n_artists == 3 and model.config.n_tokens == 16
    ids = load_artist_genre_ids(run, v3=False)
    assert ids.artist_id("Ada Tone") == 1 and ids.artist_id("Bo Noise") == 2


def test_an_upsampler_trains_on_codes_with_the_upper_level_as_condition(corpus, vqvae, tmp_path):
    run = tmp_path / "up"
    assert _train("upsampler", corpus, vqvae, run, "--preset", "tiny", "--level", "1", "--steps", "2") == 0
    model = checkpoint.load_model(run / "model", "prior")
    assert model.config.level == 1 and model.config.conditioner is not None


def _resumed_equals_straight(corpus, vqvae, tmp_path, *settings) -> dict[str, torch.Tensor]:
    """Train 4 steps in one run and 2 + 2 in a resumed one with `settings`; the weights must be equal.
    Returns the uninterrupted run's weights."""
    assert _train("prior", corpus, vqvae, tmp_path / "straight", *settings, "--steps", "4") == 0
    assert _train("prior", corpus, vqvae, tmp_path / "resumed", *settings, "--steps", "2") == 0
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "resumed"), "--resume",
                 "--steps", "4"]) == 0  # fmt: skip
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    return straight


def test_prior_resume_equals_an_uninterrupted_run(corpus, vqvae, tmp_path):
    """With half the crops at the songs' starts (start_share), which a resumed run must keep drawing."""
    starts = ("--preset", "tiny", "--set", "start_share=0.5")
    straight = _resumed_equals_straight(corpus, vqvae, tmp_path, *starts)
    assert _train("prior", corpus, vqvae, tmp_path / "uniform", "--preset", "tiny", "--steps", "4") == 0
    uniform = load_file(str(tmp_path / "uniform" / "model.safetensors"))
    # and the share was trained with: other crops, other weights
    assert any(not torch.equal(uniform[key], value) for key, value in straight.items())


def test_label_dropout_trains_the_neutral_start_token_and_resumes_exactly(corpus, vqvae, tmp_path):
    """With every crop dropped, the labels reach the loss only through the tables' means: each known row
    gets the same gradient, so rows move together and keep their differences (AdamW, no weight decay).
    Without dropout they move apart. A resumed run draws the same dropped crops as an uninterrupted one."""
    assert _train("prior", corpus, vqvae, tmp_path / "base", "--preset", "tiny", "--steps", "2") == 0
    base = tmp_path / "base" / "model"
    tune = ("--preset", "tiny", "--from", str(base), "--steps", "3", "--set", "lr=0.01")
    assert _train("prior", corpus, vqvae, tmp_path / "dropped", *tune, "--set", "label_dropout=1.0") == 0
    assert _train("prior", corpus, vqvae, tmp_path / "labelled", *tune) == 0

    def artist_rows(run):
        return checkpoint.load_model(run, "prior").y_emb.artist_emb.emb.weight.detach()[1:]

    before = artist_rows(base)
    dropped = artist_rows(tmp_path / "dropped" / "model")
    labelled = artist_rows(tmp_path / "labelled" / "model")
    assert not torch.allclose(dropped, before, atol=1e-4), "the rows were trained"
    torch.testing.assert_close(dropped - dropped[0], before - before[0], atol=1e-6, rtol=0)
    assert not torch.allclose(labelled - labelled[0], before - before[0], atol=1e-4)

    _resumed_equals_straight(corpus, vqvae, tmp_path, "--preset", "tiny", "--set", "label_dropout=0.5")


def test_a_fine_tune_may_change_the_priors_attention_pattern_but_not_its_shape(
    corpus, vqvae, tmp_path, capsys
):
    """The tiny prior (16 positions per block, a lyric layer last) into 2 blocks of 32, which a resumed run
    keeps; the lyric layer cannot become a self-attention one, and no weight's shape can change."""
    assert _train("prior", corpus, vqvae, tmp_path / "base", "--preset", "tiny", "--steps", "1") == 0
    base = tmp_path / "base" / "model"
    fine_tune = ("--preset", "tiny", "--from", str(base), "--steps", "2")
    assert _train("prior", corpus, vqvae, tmp_path / "wide", *fine_tune, "--set", "blocks=2") == 0
    tuned = checkpoint.load_model(tmp_path / "wide" / "model", "prior")
    was = checkpoint.load_model(base, "prior").config.transformer
    assert tuned.config.transformer.blocks == 2 and tuned.config.transformer.attn_funcs == was.attn_funcs
    assert main(["train", "prior", "--data", str(corpus), "--run", str(tmp_path / "wide"), "--resume",
                 "--steps", "3"]) == 0  # fmt: skip
    assert checkpoint.load_model(tmp_path / "wide" / "model", "prior").config == tuned.config
    refused = {
        "attn_order=0": "layer 3 would change from kind 6 to 0",
        "prior_width=64": "cannot set prior_width",
        "blocks=7": "cannot be split into 7 blocks",
    }
    for setting, message in refused.items():
        capsys.readouterr()
        assert _train("prior", corpus, vqvae, tmp_path / setting, *fine_tune, "--set", setting) != 0
        assert message in capsys.readouterr().err, setting


def test_input_noise_changes_what_the_prior_reads_not_what_it_predicts_and_resumes_exactly(
    corpus, vqvae, tmp_path
):
    """With inputs equal to the tokens the loss is the plain one; noisy inputs change it. A run with input
    noise trains other weights than one without, and a resumed run draws the same noise."""
    assert _train("prior", corpus, vqvae, tmp_path / "base", "--preset", "tiny", "--steps", "1") == 0
    prior = checkpoint.load_model(tmp_path / "base" / "model", "prior").eval()
    cfg = prior.config
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, cfg.l_bins, (2, cfg.n_ctx), generator=generator)
    labels = torch.tensor([[44100 * 30, 0, cfg.sample_length, 1, 1] + [0] * (cfg.label_len - 5)] * 2)
    with torch.no_grad():
        plain = prior.loss(tokens, labels)["gen_loss"]
        assert torch.equal(prior.loss(tokens, labels, inputs=tokens)["gen_loss"], plain)
        noisy = torch.where(torch.rand(tokens.shape, generator=generator) < 0.3, tokens.flip(1), tokens)
        assert not torch.allclose(prior.loss(tokens, labels, inputs=noisy)["gen_loss"], plain)
    noisy_run = _resumed_equals_straight(
        corpus, vqvae, tmp_path, "--preset", "tiny", "--set", "input_noise=0.3"
    )
    assert _train("prior", corpus, vqvae, tmp_path / "clean", "--preset", "tiny", "--steps", "4") == 0
    clean = load_file(str(tmp_path / "clean" / "model.safetensors"))
    assert any(not torch.equal(clean[key], value) for key, value in noisy_run.items())


def test_input_noise_draws_the_global_batch_so_two_processes_read_what_one_does():
    from types import SimpleNamespace

    from engine.training.prior_task import PriorTask

    def noisy(rank: int, world: int, tokens: torch.Tensor) -> torch.Tensor:
        task = SimpleNamespace(
            context=SimpleNamespace(rank=rank, world_size=world),
            train=SimpleNamespace(seed=5, batch_size=4, input_noise=0.3),
            model=SimpleNamespace(config=SimpleNamespace(l_bins=64)),
        )
        return PriorTask._noisy_inputs(task, 11, tokens)

    tokens = torch.arange(4 * 50).reshape(4, 50) % 64
    one = noisy(0, 1, tokens)
    assert torch.equal(torch.cat([noisy(0, 2, tokens[:2]), noisy(1, 2, tokens[2:])]), one)
    share = float((one != tokens).float().mean())
    assert 0.2 < share < 0.35, share  # 0.3 drawn, less the draws that land on the code already there


def test_a_fine_tune_gives_the_prior_a_beat_clock_from_its_songs_tempi(tmp_path, vqvae, capsys):
    """`--set beat_bins=...` on a trained prior: the clock starts silent (the first step's loss is the base
    prior's), learns from the songs' tempi, saves each genre's usual tempo, and resumes bit-exactly."""
    corpus = write_corpus(tmp_path / "data", songs=3, seconds=2.0, tempi=((120, 4), (150, 3)))
    assert _train("prior", corpus, vqvae, tmp_path / "base", "--preset", "tiny", "--steps", "1") == 0
    base = tmp_path / "base" / "model"
    clock = ("--preset", "tiny", "--from", str(base), "--set", "beat_bins=8", "--set", "bar_beats=4")

    def first_loss(run, *settings) -> str:
        capsys.readouterr()
        assert _train("prior", corpus, vqvae, tmp_path / run, "--preset", "tiny", "--from", str(base),
                      *settings, "--steps", "1", "--set", "lr=0.01") == 0  # fmt: skip
        return re.search(r"^step 1/1 loss ([\d.e+-]+)", capsys.readouterr().out, re.M).group(1)

    assert first_loss("clocked", "--set", "beat_bins=8") == first_loss("unclocked")
    _resumed_equals_straight(corpus, vqvae, tmp_path, *clock)
    tuned = checkpoint.load_model(tmp_path / "straight" / "model", "prior")
    assert (tuned.config.labels.beat_bins, tuned.config.labels.bar_beats) == (8, 4)
    phase = tuned.y_emb.beat_phase_emb.emb.weight.detach()
    assert not torch.equal(phase[1:], torch.zeros_like(phase[1:])), "the clock was trained"
    assert torch.equal(phase[0], torch.zeros_like(phase[0])), "every song had a tempo: 'no clock' unused"
    saved = checkpoint.read_settings(tmp_path / "straight" / "model")["genre_tempi"]
    assert saved == {"jazz": [150.0, 3], "rock": [120.0, 4]}


@pytest.mark.slow
def test_fine_tuning_a_converted_prior_adds_a_new_artist_and_leaves_other_artists_alone(tmp_path):
    require_fixture()
    converted = tmp_path / "converted"
    assert main(["convert-jukebox", str(FIXTURE_DIR / "models"), str(converted), "--hparams",
                 str(FIXTURE_DIR / "hparams.json"), "--only", "vqvae", "prior_5b"]) == 0  # fmt: skip
    for name in ("v2_artist_ids.txt", "v2_genre_ids.txt"):
        shutil.copy(IDS_DIR / name, converted / name)
    # "Andrés Schiff" is official artist 1 ("andr_s_schiff"); "Zed Newcomer" is not in any list.
    data = write_corpus(tmp_path / "data", songs=2, seconds=1.0, artists=("Andrés Schiff", "Zed Newcomer"),
                        genres=("rock", "rock"))  # fmt: skip
    before = checkpoint.load_model(converted / "prior_5b", "prior")
    old_rows = before.config.labels.n_artists
    run = tmp_path / "tuned"
    assert main(["train", "prior", "--from", str(converted / "prior_5b"), "--vqvae",
                 str(converted / "vqvae"), "--data", str(data), "--run", str(run), "--preset", "tiny",
                 "--steps", "2"]) == 0  # fmt: skip

    tuned = checkpoint.load_model(run / "model", "prior")
    assert tuned.config.labels.n_artists == old_rows + 1
    ids = load_artist_genre_ids(run, v3=False)
    assert ids.artist_id("Zed Newcomer") == old_rows
    assert ids.artist_id("Andrés Schiff") == 1 and ids.artist_id("Sonny Terry") == 2
    old = before.y_emb.artist_emb.emb.weight
    new = tuned.y_emb.artist_emb.emb.weight
    # AdamW without weight decay leaves rows that never received a gradient exactly as they were.
    untouched = [i for i in range(old_rows) if i != 1]
    assert torch.equal(new[untouched], old[untouched])
    assert not torch.equal(new[1], old[1]), "the known artist in the data was trained"
    assert not torch.equal(new[old_rows], old.mean(0)), "the new artist's row was trained from its start"
