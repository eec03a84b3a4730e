"""The whole co-composition flow through `cocompose` on a tiny model: new, prime, generate, pick,
continue, swap, undo/redo, upsample a range, export WAV and FLAC, info; and the clear errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cocompose.cli import main
from cocompose.store import Project
from tests.compose_model import write_tiny_bundle

CPS = 22050 / 128


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def state(project_path):
    with Project.open(project_path) as project:
        tree = project.tree
        return tree.current_path, {n.id: n for n in tree.nodes()}


def test_the_whole_flow(tmp_path, model_dir, capsys):
    song = tmp_path / "song.cocompose"
    wav = tmp_path / "prime.wav"
    t = np.arange(44100) / 44100
    sf.write(wav, np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.3, 44100)

    assert run(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock", "--seconds", 20)[0] == 0
    code, out, _ = run(capsys, "prime", song, wav, "--model", model_dir)
    assert code == 0 and "primed with prime.wav: 173 codes" in out

    # The model folder is recorded: later commands need no --model.
    code, out, _ = run(capsys, "generate", song, "--branches", 3, "--seconds", 0.3, "--seed", 7)
    assert code == 0 and out.count("take ") == 3 and "seed 9" in out
    path, nodes = state(song)
    takes = sorted(i for i in nodes if i != 1)
    assert [nodes[i].sampling.seed for i in takes] == [7, 8, 9]
    assert all(len(nodes[i].codes) == round(0.3 * CPS) for i in takes)

    assert run(capsys, "pick", song, takes[1])[0] == 0
    code, out, _ = run(capsys, "continue", song, "--seconds", 0.2, "--seed", 1)
    assert code == 0 and "picked" in out
    path, nodes = state(song)
    assert path[:2] == (1, takes[1]) and len(path) == 3

    assert run(capsys, "swap", song, path[-1], "--artist", "Bo Noise")[0] == 0
    assert state(song)[1][path[-1]].conditioning.artist == "Bo Noise"
    assert "undid: Change conditioning" in run(capsys, "undo", song)[1]
    assert state(song)[1][path[-1]].conditioning is None
    assert run(capsys, "redo", song)[0] == 0
    assert state(song)[1][path[-1]].conditioning.artist == "Bo Noise"

    code, out, _ = run(capsys, "upsample", song, "--range", "0.5:0.8")
    assert code == 0 and "upsampled:" in out

    wav_out, flac_out = tmp_path / "song.wav", tmp_path / "song.flac"
    assert run(capsys, "export", song, wav_out)[0] == 0
    code, out, _ = run(capsys, "export", song, flac_out, "--quality", "upsampled", "--range", "0.5:0.8",
                       "--lufs", "none", "--rate", 44100)  # fmt: skip
    assert code == 0, out
    whole = sf.info(wav_out)
    song_codes = sum(len(nodes[i].codes) for i in path)
    assert whole.samplerate == 22050 and whole.frames == song_codes * 128
    part = sf.info(flac_out)
    assert part.samplerate == 44100 and part.format == "FLAC"
    assert part.duration == pytest.approx(round(0.8 * CPS) / CPS - int(0.5 * CPS) / CPS, abs=0.01)

    code, out, _ = run(capsys, "info", song)
    assert code == 0 and f"{model_dir.resolve()}#tiny" in out and "upsample done" in out
    assert "Bo Noise" in out and out.count("generate done") == 2


def test_clear_errors_exit_2(tmp_path, model_dir, capsys):
    song = tmp_path / "song.cocompose"
    run(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock")
    code, _, err = run(capsys, "generate", song, "--seconds", 1, "--seed", 1)
    assert code == 2 and "pass --model DIR" in err
    code, _, err = run(capsys, "swap", song, 1, "--artist", "Ada Tnoe", "--model", model_dir)
    assert code == 2 and "unknown artist 'Ada Tnoe'; nearest: ada_tone" in err
    code, _, err = run(capsys, "generate", song, "--seconds", -2, "--seed", 1, "--model", model_dir)
    assert code == 2 and "seconds must be more than 0" in err
    code, _, err = run(capsys, "generate", song, "--seconds", 1e9, "--seed", 1, "--model", model_dir)
    assert code == 2 and "at most 3600" in err
    code, _, err = run(capsys, "generate", song, "--seconds", 1, "--branches", 0, "--model", model_dir)
    assert code == 2 and "1 to 64 branches" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", str(song), "--seconds", "1", "--seed", "-3"])
    assert exit_info.value.code == 2 and "a seed must be from 0" in capsys.readouterr().err
    code, _, err = run(capsys, "upsample", song, "--range", "abc", "--model", model_dir)
    assert code == 2 and "START:END" in err
    code, _, err = run(capsys, "generate", song, "--from", 99, "--seconds", 1, "--seed", 1)
    assert code == 2 and "Take 99 is not in this song" in err
