"""Bad `cocompose train` arguments exit 2 with a message that says what is wrong."""

from __future__ import annotations

import pytest
import torch

from cocompose.cli import main
from engine import checkpoint
from engine.vqvae import TINY, VQVAE
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "data", songs=1, seconds=0.5)


@pytest.fixture
def vqvae(tmp_path):
    torch.manual_seed(0)
    checkpoint.save_model(tmp_path / "vqvae", VQVAE(TINY), "vqvae")
    return tmp_path / "vqvae"


def _fails(capsys, argv: list[str], *needles: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cocompose train: error:"), err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(
    ("settings", "needles"),
    [
        (["nope=1"], ["unknown setting 'nope'", "lr", "l_bins"]),
        (["lr=fast"], ["bad value for lr", "expected float"]),
        (["lr"], ["--set expects key=value"]),
        (["steps=0"], ["steps must be positive"]),
        (["downs_t=3,2"], ["one entry per level"]),
    ],
)
def test_bad_settings_are_named(capsys, corpus, tmp_path, settings, needles):
    argv = ["train", "vqvae", "--data", str(corpus), "--run", str(tmp_path / "run"), "--preset", "tiny"]
    for setting in settings:
        argv += ["--set", setting]
    _fails(capsys, argv, *needles)


def test_prior_arguments_are_checked(capsys, corpus, vqvae, tmp_path):
    base = ["--data", str(corpus), "--run", str(tmp_path / "run"), "--preset", "tiny"]
    _fails(capsys, ["train", "prior", *base], "needs --vqvae")
    _fails(
        capsys,
        ["train", "upsampler", *base, "--vqvae", str(vqvae), "--level", "2"],
        "--level must be in 0..1",
    )
    _fails(capsys, ["train", "prior", *base, "--vqvae", str(vqvae), "--set", "n_ctx=65"], "blocks")
    _fails(capsys, ["train", "prior", *base, "--vqvae", str(tmp_path / "missing")], "not found")


def test_run_folder_rules(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "vqvae", "--data", str(corpus), "--run", str(run), "--preset", "tiny"]
    _fails(capsys, [*argv[:6], "--resume"], "no checkpoint to resume from")
    _fails(capsys, ["train", "vqvae", "--data", str(tmp_path / "nowhere"), "--run", str(run)], "not found")
    assert main([*argv, "--steps", "1"]) == 0
    _fails(capsys, [*argv, "--steps", "2"], "already holds a run", "--resume")
    _fails(capsys, [*argv, "--resume"], "only --steps may change")
    _fails(capsys, ["train", "prior", "--data", str(corpus), "--run", str(run), "--resume"], "trains a vqvae")


def test_argparse_errors_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "decoder", "--data", "x", "--run", "y"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "vqvae", "--data", "x"])
    assert exit_info.value.code == 2
