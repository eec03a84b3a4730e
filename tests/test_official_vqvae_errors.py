"""Bad VQ-VAE files get a clear error naming the problem, and nothing inside them ever executes."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from engine.errors import CheckpointError
from engine.official import load_vqvae
from tests.reference import checkpoint_path, resolved_hps


def _official_dict():
    return torch.load(checkpoint_path("vqvae"), map_location="cpu", weights_only=True)


class _WritesFileWhenUnpickled:
    """A pickle payload: unpickling it calls `open(path, 'w')`, i.e. runs code."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class _RunsShellWhenUnpickled:
    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload_type", [_WritesFileWhenUnpickled, _RunsShellWhenUnpickled])
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload_type, zip_format):
    canary = tmp_path / "pwned"
    checkpoint = _official_dict()
    checkpoint["hps"] = {"innocent": payload_type(canary)}
    path = tmp_path / "vqvae.pth.tar"
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match=r"refusing to load.*run code"):
        load_vqvae(path, resolved_hps("vqvae"))
    assert not canary.exists()


def test_plain_pickle_with_code_is_refused(tmp_path):
    canary = tmp_path / "pwned"
    path = tmp_path / "vqvae.pth.tar"
    path.write_bytes(pickle.dumps({"model": _WritesFileWhenUnpickled(canary)}, protocol=2))
    with pytest.raises(CheckpointError):
        load_vqvae(path, resolved_hps("vqvae"))
    assert not canary.exists()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_file(tmp_path, fraction):
    data = checkpoint_path("vqvae").read_bytes()
    path = tmp_path / "vqvae.pth.tar"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"truncated|damaged"):
        load_vqvae(path, resolved_hps("vqvae"))


def test_empty_missing_and_random_files(tmp_path):
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_vqvae(empty)
    with pytest.raises(CheckpointError, match="not found"):
        load_vqvae(tmp_path / "nope.pth.tar")
    noise = tmp_path / "noise.pth.tar"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_vqvae(noise)


def test_prior_checkpoint_is_named_as_such():
    with pytest.raises(CheckpointError, match="prior checkpoint, not a VQ-VAE"):
        load_vqvae(checkpoint_path("upsampler_level_0"), resolved_hps("vqvae"))


def test_not_a_checkpoint_dict(tmp_path):
    path = tmp_path / "list.pth.tar"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_vqvae(path)
    path = tmp_path / "nomodel.pth.tar"
    torch.save({"weights": {}}, path)
    with pytest.raises(CheckpointError, match="no 'model'"):
        load_vqvae(path)


def test_missing_and_misshapen_keys(tmp_path):
    checkpoint = _official_dict()
    removed = sorted(checkpoint["model"])[3]
    del checkpoint["model"][removed]
    path = tmp_path / "missing.pth.tar"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="missing") as info:
        load_vqvae(path, resolved_hps("vqvae"))
    assert removed in str(info.value)

    checkpoint = _official_dict()
    key = next(k for k in checkpoint["model"] if k.endswith(".k"))
    checkpoint["model"][key] = checkpoint["model"][key][:-1]
    path = tmp_path / "misshapen.pth.tar"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="other shapes") as info:
        load_vqvae(path, resolved_hps("vqvae"))
    assert key in str(info.value)


def test_wrong_hyper_parameters_are_reported_not_crashed():
    hps = dict(resolved_hps("vqvae"), width=resolved_hps("vqvae")["width"] + 8)
    with pytest.raises(CheckpointError, match="does not match"):
        load_vqvae(checkpoint_path("vqvae"), hps)


def test_ddp_prefixed_keys_load(tmp_path):
    checkpoint = _official_dict()
    checkpoint["model"] = {f"module.{k}": v for k, v in checkpoint["model"].items()}
    path = tmp_path / "ddp.pth.tar"
    torch.save(checkpoint, path)
    model = load_vqvae(path, resolved_hps("vqvae"))
    reference = load_vqvae(checkpoint_path("vqvae"), resolved_hps("vqvae"))
    for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_directory_instead_of_file(tmp_path):
    shutil.copy(checkpoint_path("vqvae"), tmp_path / "x")
    with pytest.raises(CheckpointError, match="not a file"):
        load_vqvae(tmp_path)
