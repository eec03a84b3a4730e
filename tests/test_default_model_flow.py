"""The whole CLI flow with the embedded default model: new song, prime from a file, branches, pick,
continue, an artist change mid-song, undo/redo, upsample a range, and export in every format. Each exported
file is read back: duration, rate, loudness within 0.5 LU of the target (independent meter), tags and the
sidecar's sections."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cocompose.cli import main
from cocompose.models import DEFAULT_MODEL_DIR
from cocompose.store import Project
from tests.loudness_reference import integrated_lufs

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "bundle.json").is_file(), reason="no default model built"),
]
TARGET_LUFS = -16.0


def cli(capsys, *args) -> str:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_the_whole_flow_with_the_default_model(tmp_path, capsys):
    song, riff = tmp_path / "song.cocompose", tmp_path / "riff.wav"
    t = np.arange(2 * 44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 196 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    sf.write(riff, np.stack([tone, tone[::-1]], 1), 44100)  # stereo 44.1 kHz: downmixed and resampled

    cli(capsys, "new", song, "--artist", "Cathedral Smoke", "--genre", "blues", "--seconds", 30,
        "--model", "default")  # fmt: skip
    assert "primed with riff.wav: 250 codes" in cli(capsys, "prime", song, riff)
    cli(capsys, "generate", song, "--branches", 2, "--seconds", 1.0, "--seed", 4)
    with Project.open(song) as project:
        takes = project.tree.children(1)
    cli(capsys, "pick", song, takes[1].id)
    cli(capsys, "continue", song, "--seconds", 1.0, "--seed", 9)
    with Project.open(song) as project:
        path = project.tree.current_path
    cli(capsys, "swap", song, path[-1], "--artist", "Neon Sirens")
    assert "undid" in cli(capsys, "undo", song)
    cli(capsys, "redo", song)
    cli(capsys, "upsample", song, "--range", "2.0:2.25")
    with Project.open(song) as project:
        path = project.tree.current_path
        song_codes = sum(len(project.tree.node(i).codes) for i in path)
    assert song_codes == 250 + 125 + 125

    for fmt in ("wav", "flac", "ogg", "opus", "mp3"):
        out = tmp_path / f"song.{fmt}"
        cli(capsys, "export", song, out, "--lufs", TARGET_LUFS)
        audio, rate = sf.read(out, dtype="float64", always_2d=True)
        assert rate == 16000, fmt  # the model's rate, which every format here takes
        assert len(audio) / rate == pytest.approx(song_codes * 128 / 16000, abs=0.08), fmt
        assert integrated_lufs(audio, rate) == pytest.approx(TARGET_LUFS, abs=0.5), fmt
        sidecar = json.loads((tmp_path / f"song.{fmt}.json").read_text())["track"]
        assert [s["artist"] for s in sidecar["sections"]] == ["Cathedral Smoke", "Neon Sirens"]
        assert sidecar["sections"][1]["start_s"] == pytest.approx(3.0)
        assert sidecar["lineage"] == list(path)
        if fmt == "mp3":
            assert b"TIT2" in out.read_bytes()[:4096] and b"Neon Sirens" in out.read_bytes()[:4096]
        else:
            with sf.SoundFile(out) as f:
                assert f.artist == "Cathedral Smoke & Neon Sirens" and f.genre == "blues"  # a duet

    part = tmp_path / "part.flac"
    cli(capsys, "export", song, part, "--quality", "upsampled", "--range", "2.0:2.25", "--lufs", "none")
    assert sf.info(part).duration == pytest.approx(0.25, abs=0.02)


def test_continuing_from_inside_a_take_cuts_it_and_branches_there(tmp_path, capsys):
    song = tmp_path / "song.cocompose"
    cli(capsys, "new", song, "--artist", "Pixel Parade", "--genre", "techno", "--model", "default")
    cli(capsys, "generate", song, "--branches", 1, "--seconds", 2.0, "--seed", 1)
    with Project.open(song) as project:
        (take,) = project.tree.children(1)
        whole = take.codes.to_numpy()
    assert "cut take" in cli(capsys, "generate", song, "--from", take.id, "--at", 0.5, "--branches", 2,
                             "--seconds", 0.5, "--seed", 7)  # fmt: skip
    with Project.open(song) as project:
        head = project.tree.node(take.id)
        children = project.tree.children(take.id)
    assert np.array_equal(head.codes.to_numpy(), whole[:62])
    rest = [c for c in children if c.sampling is not None and c.sampling.seed == 1]
    assert len(children) == 3 and len(rest) == 1  # the cut-off rest and two new branches
    assert np.array_equal(rest[0].codes.to_numpy(), whole[62:])
