"""Two gloo processes train the VQ-VAE exactly like one process on the same global batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from engine.training import TrainRequest, train
from tests.training_corpus import write_corpus

STEPS = 3
# Why these settings make 1 and 2 processes comparable:
# - revival_threshold=0: no code is ever "dead", so no code is restarted. Restarts draw random batch
#   vectors on rank 0 (broadcast to the others), and rank 0 holds half the global batch under DDP, so
#   the draws cannot match a 1-process run. Everything else in the codebook update (the EMA sums and
#   counts) is all-reduced and must match. The first codebooks come from one global batch on every
#   rank (engine.training.vqvae_task.init_codebooks_), so they match too.
# - oneDNN off: its convolutions round differently for batch 1 and batch 2, and a last-bit difference
#   can flip a near-tie in the nearest-code search, which is discrete. The native kernels compute each
#   item alike whatever the batch size, so what remains is the order of the gradient sum.
SETTINGS = ("revival_threshold=0", "warmup_steps=0", "log_every=100", "save_every=100")


# A decoder fine-tune against a critic: its hinge losses are batch means, so the all-reduced gradients
# of two processes are those of one. (Feature matching divides by the batch's mean activation, a ratio
# that each process would take over its own half, so it is left out of the comparison.) Adam's eps is
# raised: some of the critic's gradients are exactly zero but for rounding (its score's bias, while every
# score lies inside the hinge's margins), and Adam turns any such rounding into a full step of either
# sign; a larger eps leaves it at its own size, and every real gradient still dominates.
CRITIC = ("decoders_only=true", "adversarial=0.5", "critic_width=4", "warmup_steps=0", "log_every=100",
          "eps=1e-4")  # fmt: skip


def _request(data, run_dir, base=None) -> TrainRequest:
    settings = SETTINGS if base is None else CRITIC
    return TrainRequest(
        "vqvae", data, run_dir, preset="tiny", settings=settings, steps=STEPS, batch_size=2, device="cpu",
        from_model=base,
    )  # fmt: skip


def _worker(rank: int, world: int, port: int, data, run_dir, base=None) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    assert train(_request(data, run_dir, base), say=lambda message: None) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, monkeypatch):
    data = write_corpus(tmp_path / "data")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    mp.spawn(_worker, args=(2, _free_port(), data, tmp_path / "two"), nprocs=2, join=True)

    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    try:
        assert train(_request(data, tmp_path / "one"), say=lambda message: None) == 0
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn

    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in (k for k in one if not k.startswith("bottleneck.")):
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=0, msg=key)
    # The gradient sums still differ in the last bits after step 1, and the top level's latents of a
    # barely trained model are so alike that a few of them sit on near-ties between two codes: one such
    # vector may pick the other code in one run. Such a flip moves one count between two codes and
    # leaves the totals alone, whereas a missing all-reduce would count half the vectors every step.
    for level in range(3):
        prefix = f"bottleneck.level_blocks.{level}."
        counts_one, counts_two = one[prefix + "k_elem"], two[prefix + "k_elem"]
        torch.testing.assert_close(counts_two.sum(), counts_one.sum(), atol=1e-4, rtol=0)
        flipped = int(((counts_two - counts_one).abs() > 1e-5).sum())
        assert flipped <= 2 * STEPS, f"level {level}: {flipped} codes' counts differ"
        torch.testing.assert_close(two[prefix + "k"], one[prefix + "k"], atol=1e-3, rtol=0)


@pytest.mark.slow
def test_a_fine_tune_against_a_critic_on_two_processes_matches_one(tmp_path, monkeypatch):
    data = write_corpus(tmp_path / "data")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    try:
        assert train(_request(data, tmp_path / "base"), say=lambda message: None) == 0
        base = tmp_path / "base" / "model"
        mp.spawn(_worker, args=(2, _free_port(), data, tmp_path / "two", base), nprocs=2, join=True)
        assert train(_request(data, tmp_path / "one", base), say=lambda message: None) == 0
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = mkldnn
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    decoders = [k for k in one if k.startswith("decoders.")]
    assert decoders and one.keys() == two.keys()
    for key in decoders:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=0, msg=key)
    # The critic's weights agree to within a fifth of one step (the rate is 1e-3): a critic whose
    # gradients were not all-reduced would have stepped on each process's half alone, a whole step off.
    saved = f"checkpoints/step_{STEPS:08d}/state.safetensors"
    one, two = (load_file(str(tmp_path / run / saved)) for run in ("one", "two"))
    critic = [k for k in one if k.startswith("companion.critic.")]
    assert critic and one.keys() == two.keys()
    for key in critic:
        torch.testing.assert_close(two[key], one[key], atol=2e-4, rtol=0, msg=key)
