"""The learning-rate schedule: linear warm-up, flat, then an optional linear decay to zero (the
reference's lr_use_linear_decay), and the training loop really steps with it."""

from __future__ import annotations

import itertools
import json

import pytest

from cocompose.cli import main
from engine.training.config import TrainConfig
from tests.training_corpus import write_corpus


def test_warm_up_then_flat_then_a_linear_decay_to_zero():
    config = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, decay_start=40, decay_steps=50)
    assert config.lr_at(0) == pytest.approx(1e-4)
    assert config.lr_at(9) == pytest.approx(1e-3)
    assert config.lr_at(39) == config.lr_at(40) == pytest.approx(1e-3)
    assert config.lr_at(65) == pytest.approx(0.5e-3)
    assert config.lr_at(89) == pytest.approx(1e-3 / 50)
    assert config.lr_at(90) == config.lr_at(99) == 0.0
    rates = [config.lr_at(step) for step in range(40, 100)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_without_a_decay_the_rate_stays_flat():
    config = TrainConfig(steps=100, lr=1e-3, warmup_steps=0)
    assert {config.lr_at(step) for step in range(100)} == {1e-3}


@pytest.mark.parametrize(("start", "length"), [(-1, 10), (5, 0)])
def test_a_decay_without_a_length_or_before_step_zero_is_refused(start, length):
    with pytest.raises(ValueError, match="decay_start >= 0 and decay_steps > 0"):
        TrainConfig(decay_start=start, decay_steps=length)


@pytest.mark.usefixtures("one_thread")
def test_the_training_loop_steps_at_the_scheduled_rate(tmp_path):
    corpus = write_corpus(tmp_path / "data", songs=1, seconds=0.5)
    run = tmp_path / "run"
    settings = ["--set", "warmup_steps=1", "--set", "decay_start=2", "--set", "decay_steps=4"]
    argv = ["train", "vqvae", "--data", str(corpus), "--run", str(run), "--preset", "tiny", *settings]
    assert main([*argv, "--steps", "4", "--set", "save_every=1"]) == 0
    config = TrainConfig(**json.loads((run / "run.json").read_text())["train"])
    for step in (3, 4):  # the rate the optimizer last stepped with is that of step - 1
        state = json.loads((run / "checkpoints" / f"step_{step:08d}" / "state.json").read_text())
        assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(config.lr_at(step - 1))
    assert config.lr_at(3) == pytest.approx(config.lr * 3 / 4)  # one step into a 4-step decay
