"""`cocompose convert-jukebox`: official file -> own format -> identical outputs, with no pickle at load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from cocompose.cli import main
from engine import checkpoint
from engine.errors import CheckpointError
from engine.official import load_vqvae
from tests.reference import FIXTURE_DIR, arrays, checkpoint_path, hparams, resolved_hps


@pytest.fixture
def official_dir(tmp_path):
    """A download folder in the official layout holding the fixture's VQ-VAE."""
    src = tmp_path / "downloads"
    (src / "5b").mkdir(parents=True)
    shutil.copy(checkpoint_path("vqvae"), src / "5b" / "vqvae.pth.tar")
    return src


@pytest.fixture
def hparams_file(tmp_path):
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps(hparams()))
    return path


def test_converted_vqvae_gives_identical_outputs(official_dir, hparams_file, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert-jukebox", str(official_dir), str(out), "--hparams", str(hparams_file)]) == 0
    assert "vqvae" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["vqvae.json", "vqvae.safetensors"]

    settings = json.loads((out / "vqvae.json").read_text())
    assert settings["format_version"] == checkpoint.FORMAT_VERSION and settings["kind"] == "vqvae"
    converted = checkpoint.load_model(out / "vqvae", kind="vqvae")
    official = load_vqvae(checkpoint_path("vqvae"), resolved_hps("vqvae"))
    for key, value in official.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key

    ref = arrays("vqvae_ref")
    x = torch.from_numpy(ref["x"])
    for level, (a, b) in enumerate(zip(converted.encode(x), official.encode(x), strict=True)):
        assert torch.equal(a, b)
        np.testing.assert_array_equal(converted.decode(a, level).numpy(), official.decode(b, level).numpy())


def test_converted_model_loads_without_unpickling(official_dir, hparams_file, tmp_path, monkeypatch):
    out = tmp_path / "converted"
    main(["convert-jukebox", str(official_dir), str(out), "--hparams", str(hparams_file), "--only", "vqvae"])

    def no_pickle(*args, **kwargs):
        raise AssertionError("loading the project's own format must not unpickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr("pickle.loads", no_pickle)
    model = checkpoint.load_model(out / "vqvae.safetensors")
    assert not model.training


def test_cli_runs_as_a_console_command(official_dir, hparams_file, tmp_path):
    out = tmp_path / "converted"
    result = subprocess.run(
        [sys.executable, "-m", "cocompose.cli", "convert-jukebox", str(official_dir), str(out),
         "--hparams", str(hparams_file)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "vqvae.safetensors").exists()


def test_cli_errors_are_clear_and_exit_2(tmp_path, capsys):
    assert main(["convert-jukebox", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "source folder not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert-jukebox", str(empty), str(tmp_path / "out")]) == 2
    assert "no official Jukebox files" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["convert-jukebox", str(empty), str(tmp_path / "out"), "--hparams", str(bad)]) == 2
    assert "cannot read hyper-parameters" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_only_names_unknown_or_absent_models(official_dir, tmp_path, capsys):
    assert main(["convert-jukebox", str(official_dir), str(tmp_path / "o"), "--only", "prior_9b"]) == 2
    assert "unknown model names" in capsys.readouterr().err
    assert main(["convert-jukebox", str(official_dir), str(tmp_path / "o"), "--only", "prior_5b"]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_failed_conversion_leaves_no_partial_file(official_dir, tmp_path, capsys):
    data = (official_dir / "5b" / "vqvae.pth.tar").read_bytes()
    (official_dir / "5b" / "vqvae.pth.tar").write_bytes(data[: len(data) // 2])
    out = tmp_path / "converted"
    assert (
        main(["convert-jukebox", str(official_dir), str(out), "--hparams", str(FIXTURE_DIR / "hparams.json")])
        == 2
    )
    assert "truncated" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


class TestOwnFormatErrors:
    @pytest.fixture
    def saved(self, tmp_path):
        model = load_vqvae(checkpoint_path("vqvae"), resolved_hps("vqvae"))
        checkpoint.save_model(tmp_path / "m", model, "vqvae")
        return tmp_path / "m"

    def test_truncated_weights(self, saved):
        weights = saved.with_name("m.safetensors")
        weights.write_bytes(weights.read_bytes()[:1000])
        with pytest.raises(CheckpointError, match="damaged or truncated"):
            checkpoint.load_model(saved)

    def test_newer_format_version(self, saved):
        settings = saved.with_name("m.json")
        data = json.loads(settings.read_text())
        data["format_version"] = checkpoint.FORMAT_VERSION + 1
        settings.write_text(json.dumps(data))
        with pytest.raises(CheckpointError, match="newer than this Cocompose"):
            checkpoint.load_model(saved)

    def test_wrong_kind_and_missing_files(self, saved):
        with pytest.raises(CheckpointError, match="not a 'prior'"):
            checkpoint.load_model(saved, kind="prior")
        saved.with_name("m.safetensors").unlink()
        with pytest.raises(CheckpointError, match="weights not found"):
            checkpoint.load_model(saved)
        with pytest.raises(CheckpointError, match="settings not found"):
            checkpoint.load_model(saved.with_name("other"))

    def test_settings_that_are_not_ours(self, saved):
        saved.with_name("m.json").write_text('{"hello": 1}')
        with pytest.raises(CheckpointError, match="not a Cocompose model"):
            checkpoint.load_model(saved)
        saved.with_name("m.json").write_text("\x00\x01garbage")
        with pytest.raises(CheckpointError, match="not valid JSON"):
            checkpoint.load_model(saved)


PRIOR_NAMES = ["upsampler_level_0", "upsampler_level_1", "prior_5b", "prior_5b_lyrics", "prior_1b_lyrics"]


def test_every_official_file_converts_and_gives_the_same_logits(tmp_path, hparams_file):
    from engine.official import load_prior

    out = tmp_path / "converted"
    assert (
        main(["convert-jukebox", str(FIXTURE_DIR / "models"), str(out), "--hparams", str(hparams_file)]) == 0
    )
    for name in PRIOR_NAMES:
        official = load_prior(checkpoint_path(name), name, resolved_hps(name), resolved_hps("vqvae"))
        converted = checkpoint.load_model(out / name, kind="prior")
        ref = arrays(f"{name}_ref")
        z, y = torch.from_numpy(ref["z"]), torch.from_numpy(ref["y"])
        upper = torch.from_numpy(ref["z_cond"]) if "z_cond" in ref else None
        with torch.no_grad():
            expected = official.logits(z, y, upper)
            got = converted.logits(z, y, upper)
        assert torch.equal(got, expected), name
        np.testing.assert_allclose(got[0].numpy(), ref["preds"][0], atol=1e-4)

        # float16 weights stay float16 on disk, as in the official file.
        source = torch.load(checkpoint_path(name), map_location="cpu", weights_only=True)["model"]
        from safetensors import safe_open

        with safe_open(str(out / f"{name}.safetensors"), "pt") as stored:
            for key in stored.keys():
                assert (
                    stored.get_slice(key).get_dtype()
                    == {torch.float16: "F16", torch.float32: "F32"}[source[key].dtype]
                ), key


def test_id_lists_travel_with_the_converted_models(official_dir, hparams_file, tmp_path, capsys):
    from engine.prior.labels import load_artist_genre_ids
    from tests.reference import IDS_DIR

    out = tmp_path / "converted"
    args = [
        "convert-jukebox",
        str(official_dir),
        str(out),
        "--hparams",
        str(hparams_file),
        "--ids",
        str(IDS_DIR),
    ]
    assert main(args) == 0
    for v3 in (False, True):
        copied, original = load_artist_genre_ids(out / "ids", v3), load_artist_genre_ids(IDS_DIR, v3)
        assert len(copied.artists) == len(original.artists) > 100
    # An incomplete id folder is refused by name before anything is written.
    partial = tmp_path / "partial_ids"
    partial.mkdir()
    shutil.copy(IDS_DIR / "v2_artist_ids.txt", partial)
    assert main(["convert-jukebox", str(official_dir), str(tmp_path / "o2"), "--ids", str(partial)]) == 2
    assert "v3_genre_ids.txt" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
