"""`cocompose train vqvae`: trains and saves, resumes bit-exactly, saves on Ctrl-C, and fine-tunes the
decoders alone without moving a single code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cocompose.cli import main
from engine import checkpoint
from tests.training_corpus import write_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "data")


def _train(corpus, run_dir, *extra: str) -> int:
    return main(["train", "vqvae", "--data", str(corpus), "--run", str(run_dir), "--preset", "tiny", *extra])


def _tensors(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_training_saves_a_loadable_model_and_checkpoints(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(corpus, run, "--steps", "3", "--set", "save_every=2") == 0
    out = capsys.readouterr().out
    assert "step 3/3" in out and "steps/s" in out and "ETA" in out
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"]
    model = checkpoint.load_model(run / "model", "vqvae")
    assert checkpoint.read_settings(run / "model")["step"] == 3
    assert bool(model.bottleneck.level_blocks[0].initialized)


def _assert_resume_equals_straight(corpus, tmp_path, *extra: str) -> None:
    """4 steps straight and 2 steps + resume to 4 give the same weights and optimizer moments."""
    assert _train(corpus, tmp_path / "straight", *extra, "--steps", "4") == 0
    assert _train(corpus, tmp_path / "resumed", *extra, "--steps", "2") == 0
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(tmp_path / "resumed"),
                 "--resume", "--steps", "4"]) == 0  # fmt: skip
    for name in ("model.safetensors", "checkpoints/step_00000004/state.safetensors"):
        straight, resumed = (_tensors(tmp_path / run / name) for run in ("straight", "resumed"))
        assert straight.keys() == resumed.keys()
        for key, value in straight.items():
            assert torch.equal(resumed[key], value), key


def test_n_steps_then_resume_then_m_steps_equals_n_plus_m_steps(corpus, tmp_path):
    _assert_resume_equals_straight(corpus, tmp_path)


def _trained(corpus, tmp_path):
    """A tiny VQ-VAE after a few full steps: codebooks initialised and encoders no longer random."""
    assert _train(corpus, tmp_path / "base", "--steps", "3") == 0
    return tmp_path / "base" / "model"


def test_a_decoder_fine_tune_keeps_every_code_and_trains_every_decoder(corpus, tmp_path):
    base = _trained(corpus, tmp_path)
    run = tmp_path / "decoders"
    assert _train(corpus, run, "--from", str(base), "--steps", "3", "--set", "decoders_only=true") == 0
    before, after = _tensors(f"{base}.safetensors"), _tensors(run / "model.safetensors")
    frozen = [k for k in before if not k.startswith("decoders.")]
    assert any(k.startswith("encoders.") for k in frozen) and any(k.startswith("bottleneck.") for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    for level in range(3):
        keys = [k for k in before if k.startswith(f"decoders.{level}.")]
        assert any(not torch.equal(before[k], after[k]) for k in keys), f"decoder {level} did not train"
    # So the codes of any audio, and every prior trained on them, are those of the base model.
    audio = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0)) * 0.3
    old, new = checkpoint.load_model(base, "vqvae"), checkpoint.load_model(run / "model", "vqvae")
    for a, b in zip(old.encode(audio), new.encode(audio), strict=True):
        assert torch.equal(a, b)
    # The fine-tune keeps the base model's loss normalisers, so its objective is the one it was trained on.
    run_bandwidth = json.loads((run / "run.json").read_text())["bandwidth"]
    assert run_bandwidth == checkpoint.read_settings(base)["bandwidth"]
    # The optimizer holds moments for the decoders' parameters alone.
    moments = _tensors(run / "checkpoints" / "step_00000003" / "state.safetensors")
    n_decoder_params = sum(1 for _ in new.decoders.parameters())
    assert len([k for k in moments if k.endswith(".exp_avg")]) == n_decoder_params


def test_a_decoder_fine_tune_resumes_exactly(corpus, tmp_path):
    base = _trained(corpus, tmp_path)
    _assert_resume_equals_straight(corpus, tmp_path, "--from", str(base), "--set", "decoders_only=true")


def test_a_fine_tune_of_the_top_decoder_alone_trains_it_and_leaves_every_other_weight_as_it_was(
    corpus, tmp_path
):
    base = _trained(corpus, tmp_path)
    top_only = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_levels=2")
    _assert_resume_equals_straight(corpus, tmp_path, *top_only)
    before, after = _tensors(f"{base}.safetensors"), _tensors(tmp_path / "straight" / "model.safetensors")
    for key in before:
        if key.startswith("decoders.2."):
            continue
        assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoders.2."))
    moments = _tensors(tmp_path / "straight" / "checkpoints" / "step_00000004" / "state.safetensors")
    top = checkpoint.load_model(base, "vqvae").decoders[2]
    assert len([k for k in moments if k.endswith(".exp_avg")]) == sum(1 for _ in top.parameters())


def test_a_fine_tune_against_a_critic_resumes_exactly_keeps_every_code_and_saves_the_critic_apart(
    corpus, tmp_path
):
    base = _trained(corpus, tmp_path)
    critic = ("--set", "adversarial=0.5", "--set", "feature_matching=0.5", "--set", "critic_width=4")
    top_only = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_levels=2", *critic)
    _assert_resume_equals_straight(corpus, tmp_path, *top_only)  # the critic's weights included
    before, after = _tensors(f"{base}.safetensors"), _tensors(tmp_path / "straight" / "model.safetensors")
    assert before.keys() == after.keys()  # the model holds no critic: the app loads it as any VQ-VAE
    for key in before:
        if not key.startswith("decoders.2."):
            assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoders.2."))
    state = _tensors(tmp_path / "straight" / "checkpoints" / "step_00000004" / "state.safetensors")
    critic_weights = [k for k in state if k.startswith("companion.critic.")]
    assert critic_weights
    # A decoders-only fine-tune with or without a critic reads the same audio: only the objective differs.
    assert _train(corpus, tmp_path / "plain", *top_only[:6], "--steps", "4") == 0
    plain = _tensors(tmp_path / "plain" / "model.safetensors")
    assert any(not torch.equal(plain[k], after[k]) for k in plain if k.startswith("decoders.2."))


def test_a_critic_needs_a_decoders_only_fine_tune(corpus, tmp_path, capsys):
    assert _train(corpus, tmp_path / "a", "--steps", "2", "--set", "adversarial=0.1") == 2
    assert "set decoders_only=true as well" in capsys.readouterr().err
    assert _train(corpus, tmp_path / "b", "--steps", "2", "--set", "feature_matching=-1") == 2
    assert "loss weights" in capsys.readouterr().err


def test_decoder_levels_needs_a_decoders_only_fine_tune_and_real_levels(corpus, tmp_path, capsys):
    base = _trained(corpus, tmp_path)
    assert _train(corpus, tmp_path / "a", "--from", str(base), "--set", "decoder_levels=2") == 2
    assert "set decoders_only=true as well" in capsys.readouterr().err
    wrong = ("--from", str(base), "--set", "decoders_only=true", "--set", "decoder_levels=3")
    assert _train(corpus, tmp_path / "b", *wrong) == 2
    assert "levels must be some of [0, 1, 2], got [3]" in capsys.readouterr().err


def test_a_fine_tune_may_reweigh_the_loss_and_resumes_with_the_new_weights(corpus, tmp_path):
    base = _trained(corpus, tmp_path)
    spectral = ("--from", str(base), "--set", "decoders_only=true", "--set", "spectral=2.5")
    _assert_resume_equals_straight(corpus, tmp_path, *spectral)
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["model"]["spectral"] == 2.5 and checkpoint.load_model(base, "vqvae").config.spectral == 0.0
    # The term is really in the objective: the same fine-tune without it ends elsewhere.
    assert (
        _train(corpus, tmp_path / "plain", "--from", str(base), "--set", "decoders_only=true", "--steps", "4")
        == 0
    )
    plain, weighted = (_tensors(tmp_path / r / "model.safetensors") for r in ("plain", "straight"))
    assert any(not torch.equal(plain[k], weighted[k]) for k in plain if k.startswith("decoders."))


def test_a_fine_tune_cannot_change_the_loaded_model_shape(corpus, tmp_path, capsys):
    base = _trained(corpus, tmp_path)
    assert _train(corpus, tmp_path / "run", "--from", str(base), "--set", "width=64") == 2
    err = capsys.readouterr().err
    assert "cannot set width when fine-tuning" in err and "spectral" in err and "decoder_multipliers" in err
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_decoder_fine_tune_needs_a_trained_model(corpus, tmp_path, capsys):
    assert _train(corpus, tmp_path / "run", "--set", "decoders_only=true") == 2
    assert "pass --from MODEL" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_finishes_the_step_saves_and_exits_130_and_resume_continues(corpus, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "cocompose.cli", "train", "vqvae", "--data", str(corpus), "--run",
               str(run), "--preset", "tiny", "--steps", "100000", "--set", "save_every=100000"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("step 2/"):
            break
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    output = "".join(lines) + output
    assert process.returncode == 130, output
    assert "interrupted: saved step" in output
    saved = checkpoint.read_settings(run / "model")["step"]
    assert saved >= 2
    assert main(["train", "vqvae", "--data", str(corpus), "--run", str(run), "--resume",
                 "--steps", str(saved + 1)]) == 0  # fmt: skip
    assert checkpoint.read_settings(run / "model")["step"] == saved + 1


def test_retraining_the_top_level_with_a_log_mel_term_keeps_every_other_levels_codes_and_resumes_exactly(
    corpus, tmp_path
):
    """`retrain_levels=2` trains the top level's encoder, codebook and decoder (its codes move) and leaves
    the middle and bottom levels, and so their codes, bit for bit as they were."""
    base = _trained(corpus, tmp_path)
    top = ("--from", str(base), "--set", "retrain_levels=2", "--set", "log_mel=0.3")
    _assert_resume_equals_straight(corpus, tmp_path, *top)
    before, after = _tensors(f"{base}.safetensors"), _tensors(tmp_path / "straight" / "model.safetensors")
    level_2 = ("encoders.2.", "decoders.2.", "bottleneck.level_blocks.2.")
    for key in before:
        if not key.startswith(level_2):
            assert torch.equal(before[key], after[key]), key
    for part in level_2:
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(part)), part
    assert json.loads((tmp_path / "straight" / "run.json").read_text())["model"]["log_mel"] == 0.3
    old = checkpoint.load_model(base, "vqvae").eval()
    new = checkpoint.load_model(tmp_path / "straight" / "model", "vqvae").eval()
    audio = torch.randn(1, 8192, generator=torch.Generator().manual_seed(5)) * 0.2
    with torch.no_grad():
        old_codes, new_codes = old.encode(audio), new.encode(audio)
    assert all(torch.equal(a, b) for a, b in zip(old_codes[:2], new_codes[:2], strict=True))


def test_retrain_levels_needs_a_trained_model_and_is_not_a_decoders_only_fine_tune(corpus, tmp_path, capsys):
    assert _train(corpus, tmp_path / "a", "--steps", "2", "--set", "retrain_levels=2") == 2
    assert "pass --from MODEL as well" in capsys.readouterr().err
    base = _trained(corpus, tmp_path)
    both = ("--from", str(base), "--set", "retrain_levels=2", "--set", "decoders_only=true")
    assert _train(corpus, tmp_path / "b", *both) == 2
    assert "decoder_levels instead" in capsys.readouterr().err
