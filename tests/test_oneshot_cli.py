"""`cocompose generate --out DIR` (one-shot songs) and `--model` names, on the tiny model.

The one-shot must give exactly the codes a project composed by hand gives (same seeds, lengths, prime
and changes), write WAVs that read back at the model's rate and length, and refuse bad input (exit 2)
before it writes anything.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cocompose import models
from cocompose.cli import main
from cocompose.oneshot import Change, OneShotRequest, generate_oneshot, parse_change, plan_sections
from cocompose.service.upsampling import conditioning_changes
from cocompose.song import Conditioning
from cocompose.store import Project
from engine.api import ComposeEngine
from engine.render_guide import RenderGuide
from tests.compose_model import louden_labels, write_tiny_bundle

RATE, HOP = 22050, 128
CPS = RATE / HOP
ADA = Conditioning("Ada Tone", "rock")

pytestmark = pytest.mark.usefixtures("one_thread")


def write_audible_bundle(folder):
    """The tiny bundle with random VQ-VAE codebooks. Untrained codebooks are all zeros, so every code
    would decode to the same sound and audio could not tell two songs apart."""
    import torch

    from engine import checkpoint

    write_tiny_bundle(folder)
    vqvae = checkpoint.load_model(folder / "vqvae", "vqvae")
    generator = torch.Generator().manual_seed(0)
    for block in vqvae.bottleneck.level_blocks:
        block.k.copy_(torch.randn(block.k.shape, generator=generator))
        block.initialized.fill_(True)
    checkpoint.save_model(folder / "vqvae", vqvae, "vqvae")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_audible_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def engine(model_dir):
    return ComposeEngine.load(model_dir)


@pytest.fixture
def prime_wav(tmp_path):
    path = tmp_path / "prime.wav"
    t = np.arange(22050) / 44100
    sf.write(path, np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.3, 44100)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_wav(path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == RATE and sf.info(path).subtype == "FLOAT"
    return audio


# -- the plan ---------------------------------------------------------------------------------------
def test_sections_cut_at_the_nearest_code_and_keep_unnamed_names():
    changes = (Change(0.3, genre="jazz"), Change(0.1, artist="Bo Noise"))  # given out of order
    sections = plan_sections(ADA, 86, CPS, changes)
    assert [(s.start, s.end) for s in sections] == [(0, 17), (17, 52), (52, 86)]
    assert [(s.conditioning.artist, s.conditioning.genre) for s in sections] == [
        ("Ada Tone", "rock"),
        ("Bo Noise", "rock"),
        ("Bo Noise", "jazz"),
    ]
    assert plan_sections(ADA, 86, CPS, ()) == plan_sections(ADA, 86, CPS, ())[:1]
    for at in (0.0, -1.0, 86 / CPS, 9.0):
        with pytest.raises(ValueError, match="outside the song"):
            plan_sections(ADA, 86, CPS, (Change(at, artist="Bo Noise"),))
    with pytest.raises(ValueError, match="less than one code"):
        plan_sections(ADA, 86, CPS, (Change(0.001, artist="Bo Noise"),))
    with pytest.raises(ValueError, match="less than one code"):
        plan_sections(ADA, 86, CPS, (Change(0.1, artist="Bo Noise"), Change(0.101, genre="jazz")))


def test_parse_change():
    assert parse_change("12.5:artist=Bo Noise") == Change(12.5, "Bo Noise", None)
    assert parse_change("3:genre=jazz, artist=Cleo Hum") == Change(3.0, "Cleo Hum", "jazz")
    for bad in ("12", "x:artist=A", "3:", "3:artist", "3:mood=sad", "3:artist=A,artist=B", "3:artist="):
        with pytest.raises(ValueError, match="SECONDS:artist=NAME"):
            parse_change(bad)


# -- the command ------------------------------------------------------------------------------------
def test_files_manifest_and_seeds(tmp_path, model_dir, capsys):
    common = ("--model", model_dir, "--artist", "Ada Tone", "--genre", "rock", "--seconds", 0.4)
    code, _, err = run(capsys, "generate", *common, "--branches", 2, "--seed", 5,
                         "--change", "0.2:artist=Bo Noise", "--out", tmp_path / "a")  # fmt: skip
    assert code == 0, err
    n = round(0.4 * CPS)
    names = ["branch-01-seed-5.wav", "branch-02-seed-6.wav"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [*names, "manifest.json"]
    audio = [read_wav(tmp_path / "a" / name) for name in names]
    assert all(len(a) == n * HOP for a in audio) and not np.array_equal(*audio)

    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["format"] == "cocompose-oneshot"
    assert manifest["model"]["folder"] == str(model_dir.resolve()) and manifest["model"]["top"] == "tiny"
    assert len(manifest["model"]["hash"]) == 16 and manifest["model"]["sample_rate"] == RATE
    settings = manifest["settings"]
    assert (settings["seconds"], settings["branches"], settings["seed"], settings["render"]) == (
        0.4, 2, 5, "preview")  # fmt: skip
    assert settings["changes"] == [{"at_s": 0.2, "artist": "Bo Noise", "genre": None}]
    assert manifest["prime"] is None
    boundary = round(0.2 * CPS) / CPS
    for branch, name, seed in zip(manifest["branches"], names, (5, 6), strict=True):
        assert (branch["file"], branch["seed"], branch["top_codes"]) == (name, seed, n)
        assert branch["duration_s"] == pytest.approx(n / CPS)
        assert branch["sections"] == [
            {"start_s": 0.0, "end_s": pytest.approx(boundary), "artist": "Ada Tone", "genre": "rock",
             "lyrics": ""},
            {"start_s": pytest.approx(boundary), "end_s": pytest.approx(n / CPS), "artist": "Bo Noise",
             "genre": "rock", "lyrics": ""},
        ]  # fmt: skip

    # The same seed gives the same songs; a branch depends on its own seed only, not on N.
    code, _, err = run(capsys, "generate", *common, "--branches", 1, "--seed", 6,
                       "--change", "0.2:artist=Bo Noise", "--out", tmp_path / "b")  # fmt: skip
    assert code == 0, err
    np.testing.assert_array_equal(read_wav(tmp_path / "b" / "branch-01-seed-6.wav"), audio[1])


def test_oneshot_equals_the_project_flow(tmp_path, model_dir, engine, prime_wav, capsys):
    """Prime, two branches, one change: the one-shot's codes and audio are those of the project verbs."""
    seconds, at, seed = 0.3, 0.1, 11
    request = OneShotRequest(tmp_path / "out", ADA, seconds, 2, seed, prime=prime_wav,
                             changes=(Change(at, artist="Bo Noise", genre="jazz"),))  # fmt: skip
    result = generate_oneshot(request, engine)

    n, b = round(seconds * CPS), round(at * CPS)
    song = tmp_path / "song.cocompose"
    prime_codes = 87  # 0.5 s of prime at the tiny model's 172.27 codes/s
    planned = (prime_codes + n) / CPS
    assert (
        run(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock", "--seconds", repr(planned))[0]
        == 0
    )
    code, out, err = run(capsys, "prime", song, prime_wav, "--model", model_dir)
    assert code == 0 and f"{prime_codes} codes" in out, err
    code, _, err = run(capsys, "generate", song, "--branches", 2, "--seconds", repr(b / CPS), "--seed", seed)
    assert code == 0, err
    with Project.open(song) as project:
        takes = [node.id for node in project.tree.children(1)]
    leaves = []
    for i, take in enumerate(takes):
        new_voice = ("--artist", "Bo Noise", "--genre", "jazz")
        code, _, err = run(capsys, "generate", song, "--from", take, "--branches", 1, "--seed", seed + i,
                           *new_voice, "--seconds", repr((n - b) / CPS))  # fmt: skip
        assert code == 0, err
        with Project.open(song) as project:
            tree = project.tree
            leaf = tree.children(take)[0].id
            leaves.append(tree.path_codes(leaf).to_numpy())
            # The new voice is the new take's own: the take before it keeps the voice it was sampled
            # with, so upsampling changes artist exactly where the music did.
            assert tree.conditioning_at(take).artist == "Ada Tone"
            assert tree.conditioning_at(leaf) == Conditioning("Bo Noise", "jazz", "")
            changes = conditioning_changes(tree, leaf, 0, len(leaves[-1]))
            assert [(at, c.artist) for at, c in changes] == [(0, "Ada Tone"), (prime_codes + b, "Bo Noise")]

    for branch, codes in zip(result.branches, leaves, strict=True):
        assert len(codes) == prime_codes + n
        np.testing.assert_array_equal(branch.codes, codes)
        np.testing.assert_array_equal(read_wav(branch.path), engine.decode_preview(codes)[0])
    manifest = json.loads(result.manifest.read_text())
    assert manifest["prime"]["codes"] == prime_codes and manifest["prime"]["name"] == "prime.wav"
    assert manifest["prime"]["notes"] == [
        "downmixed 2 channels to mono",
        "resampled from 44100 Hz to 22050 Hz",
    ]
    sections = manifest["branches"][0]["sections"]
    assert [s["start_s"] for s in sections] == pytest.approx([0.0, (prime_codes + b) / CPS])


class LabelRecordingEngine(ComposeEngine):
    """The real engine, noting what each generation was asked: (history length, new codes, names).
    (The tiny prior's random weights barely listen to labels, so its codes cannot show a change.)"""

    def __init__(self, bundle):
        super().__init__(bundle)
        self.calls = []

    def generate(self, history, n_new, seeds, spec, settings, **kwargs):
        self.calls.append((len(history), n_new, tuple(seeds), spec.artist, spec.genre, spec.total_seconds))
        yield from super().generate(history, n_new, seeds, spec, settings, **kwargs)


def test_each_section_is_sampled_with_its_names_from_its_first_code(tmp_path, engine):
    recording = LabelRecordingEngine(engine.bundle)
    changes = (Change(0.3, genre="jazz"), Change(0.1, artist="Bo Noise"))
    request = OneShotRequest(tmp_path / "out", ADA, 0.4, 2, 3, changes=changes)
    result = generate_oneshot(request, recording)
    n, total = round(0.4 * CPS), round(0.4 * CPS) / CPS
    b1, b2 = round(0.1 * CPS), round(0.3 * CPS)
    assert recording.calls == [
        (0, b1, (3, 4), "Ada Tone", "rock", total),
        (b1, b2 - b1, (3,), "Bo Noise", "rock", total),
        (b1, b2 - b1, (4,), "Bo Noise", "rock", total),
        (b2, n - b2, (3,), "Bo Noise", "jazz", total),
        (b2, n - b2, (4,), "Bo Noise", "jazz", total),
    ]
    # Cutting the song at the changes does not disturb what comes before each cut.
    plain = generate_oneshot(OneShotRequest(tmp_path / "plain", ADA, 0.1, 2, 3), engine)
    for cut, whole in zip(result.branches, plain.branches, strict=True):
        assert len(cut.codes) == n and len(whole.codes) == b1
        np.testing.assert_array_equal(cut.codes[:b1], whole.codes)


def test_upsample_renders_through_both_upsamplers(tmp_path, model_dir, capsys):
    common = ("generate", "--model", model_dir, "--artist", "Cleo Hum", "--genre", "folk", "--seconds", 0.2,
              "--branches", 1, "--seed", 2)  # fmt: skip
    assert run(capsys, *common, "--out", tmp_path / "fast")[0] == 0
    code, out, err = run(capsys, *common, "--upsample", "--out", tmp_path / "slow")
    assert code == 0 and "upsampled" in out, err
    fast = read_wav(tmp_path / "fast" / "branch-01-seed-2.wav")
    slow = read_wav(tmp_path / "slow" / "branch-01-seed-2.wav")
    assert len(slow) == len(fast) == round(0.2 * CPS) * HOP and not np.array_equal(slow, fast)
    manifest = json.loads((tmp_path / "slow" / "manifest.json").read_text())
    assert manifest["settings"]["render"] == "upsampled" and manifest["settings"]["upsample_seed"] == 0
    assert manifest["settings"]["render_guide"] is None and "unchanged" in manifest["settings"]["audio"]


def test_an_upsampled_render_across_a_change_follows_each_sections_names(tmp_path, model_dir):
    """The one-shot's render is the engine's render with every section's names in force under its
    windows (as a project renders a swap), not the last section's names for the whole song."""
    from cocompose.service.runners import label_spec

    engine = ComposeEngine.load(model_dir)
    for up in engine.bundle.upsamplers:  # labels loud enough to decide draws
        louden_labels(up, 1e4)
    seconds, at = 0.6, 0.1
    bo = Conditioning("Bo Noise", "jazz")
    request = OneShotRequest(tmp_path / "out", ADA, seconds, 1, 4, changes=(Change(at, artist=bo.artist,
                             genre=bo.genre),), upsample=True)  # fmt: skip
    result = generate_oneshot(request, engine)
    (branch,) = result.branches
    n, b = len(branch.codes), round(at * CPS)

    def render(specs):
        levels = engine.upsample(branch.codes, specs, 0, 0, [None] * len(engine.bundle.upsamplers))
        return engine.decode_bottom(levels[0])[0]

    followed = render([(0, label_spec(ADA, n / CPS)), (b, label_spec(bo, n / CPS))])
    np.testing.assert_array_equal(read_wav(branch.path), followed)
    assert not np.array_equal(followed, render(label_spec(bo, n / CPS)))
    notes = json.loads(result.manifest.read_text())["notes"]
    assert any("the upsamplers follow the sections" in note for note in notes)


def test_a_guided_models_render_says_how_its_preview_guided_it(tmp_path, capsys):
    guide = RenderGuide(bands=12, limit_db=9.0)
    guided = write_tiny_bundle(tmp_path / "guided", audible=True, render_guide=guide)
    common = ("generate", "--model", guided, "--artist", "Cleo Hum", "--genre", "folk", "--seconds", 0.2,
              "--branches", 1, "--seed", 2)  # fmt: skip
    for render in ("preview", "upsampled"):
        out = tmp_path / render
        code, _, err = run(capsys, *common, *(("--upsample",) if render == "upsampled" else ()), "--out", out)
        assert code == 0, err
        settings = json.loads((out / "manifest.json").read_text())["settings"]
        assert settings["render"] == render
        if render == "preview":  # the preview is the top decoder's audio as it is
            assert settings["render_guide"] is None and "unchanged" in settings["audio"]
        else:
            assert RenderGuide.from_dict(settings["render_guide"]) == guide
            assert "drawn toward its preview's band envelope" in settings["audio"]


def test_bad_input_exits_2_and_writes_nothing(tmp_path, model_dir, capsys):
    out = tmp_path / "out"
    base = ("generate", "--model", model_dir, "--genre", "rock", "--seconds", 0.3, "--seed", 1)
    code, _, err = run(capsys, *base, "--artist", "Ada Tnoe", "--out", out)
    assert code == 2 and "unknown artist 'Ada Tnoe'; nearest: ada_tone" in err
    code, _, err = run(capsys, *base, "--artist", "Ada Tone", "--change", "5:artist=Bo Noise", "--out", out)
    assert code == 2 and "the change at 5 s is outside the song" in err
    code, _, err = run(capsys, *base, "--artist", "Ada Tone", "--change", "0.1:artist=Bo Nosie", "--out", out)
    assert code == 2 and "unknown artist 'Bo Nosie'; nearest: bo_noise" in err
    code, _, err = run(capsys, *base, "--out", out)
    assert code == 2 and "need --artist" in err
    assert not out.exists()

    song = tmp_path / "song.cocompose"
    run(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock")
    code, _, err = run(capsys, *base, song, "--artist", "Ada Tone", "--out", out)
    assert code == 2 and "not both" in err
    code, _, err = run(capsys, *base)
    assert code == 2 and "give a project file" in err and "or --out DIR" in err
    code, _, err = run(capsys, *base, song, "--artist", "Ada Tone", "--upsample")
    assert code == 2 and "--upsample only applies with --out DIR" in err
    code, _, err = run(capsys, *base, song, "--artist", "Ada Tnoe")  # a new voice in a project: names checked
    assert code == 2 and "unknown artist 'Ada Tnoe'; nearest: ada_tone" in err
    code, _, err = run(capsys, *base, "--artist", "Ada Tone", "--from", 1, "--out", out)
    assert code == 2 and "--from only applies to a project" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--out", str(out), "--seconds", "1", "--change", "soon:artist=Bo Noise"])
    assert exit_info.value.code == 2 and "SECONDS:artist=NAME" in capsys.readouterr().err

    # A folder with files in it is refused untouched; --overwrite replaces only same-named files.
    out.mkdir()
    mine = out / "notes.txt"
    mine.write_text("keep me")
    args = (*base, "--artist", "Ada Tone", "--branches", 1, "--out", out)
    code, _, err = run(capsys, *args)
    assert code == 2 and "already has 1 file(s) (notes.txt)" in err and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert run(capsys, *args, "--overwrite")[0] == 0
    assert run(capsys, *args, "--overwrite")[0] == 0  # again over its own files
    assert sorted(p.name for p in out.iterdir()) == ["branch-01-seed-1.wav", "manifest.json", "notes.txt"]
    assert mine.read_text() == "keep me"
    code, _, err = run(capsys, *base, "--artist", "Ada Tone", "--out", mine)
    assert code == 2 and "is a file" in err


# -- model names ------------------------------------------------------------------------------------
def test_models_home(monkeypatch, tmp_path):
    monkeypatch.setenv("COCOMPOSE_HOME", str(tmp_path / "home"))
    assert models.models_home() == tmp_path / "home" / "models"
    monkeypatch.delenv("COCOMPOSE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models.models_home() == tmp_path / "data" / "cocompose" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert models.models_home() == tmp_path / "user" / ".local" / "share" / "cocompose" / "models"


def test_model_names_resolve_for_oneshot_and_project_verbs(monkeypatch, tmp_path, model_dir, prime_wav,
                                                           capsys):  # fmt: skip
    monkeypatch.setenv("COCOMPOSE_HOME", str(tmp_path / "home"))
    installed = write_audible_bundle(tmp_path / "home" / "models" / "tiny-lab")
    (tmp_path / "home" / "models" / ".partial-download").mkdir()
    assert models.installed_models() == ["tiny-lab"]
    assert models.resolve_model("tiny-lab") == installed
    assert models.resolve_model(str(model_dir)) == model_dir
    with pytest.raises(
        ValueError, match=r"unknown model 'tiny-lb'.*installed: tiny-lab.*did you mean tiny-lab"
    ):
        models.resolve_model("tiny-lb")
    with pytest.raises(ValueError, match="does not exist"):
        models.resolve_model(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="is not a folder"):
        models.resolve_model(str(prime_wav))

    monkeypatch.setattr(models, "DEFAULT_MODEL_DIR", tmp_path / "assets" / "default-model")
    with pytest.raises(ValueError, match=r"default model is not built yet.*cocompose train-default"):
        models.resolve_model("default")
    code, _, err = run(capsys, "generate", "--artist", "Ada Tone", "--genre", "rock", "--seconds", 0.1,
                       "--out", tmp_path / "x")  # fmt: skip
    assert code == 2 and "cocompose train-default" in err  # --model defaults to 'default' with --out
    monkeypatch.setattr(models, "DEFAULT_MODEL_DIR", model_dir)
    assert models.resolve_model("default") == model_dir

    # The one-shot and the project verbs take the name; the project records the folder it found.
    code, _, err = run(capsys, "generate", "--model", "tiny-lab", "--artist", "Ada Tone", "--genre", "rock",
                       "--seconds", 0.1, "--seed", 0, "--out", tmp_path / "y")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "y" / "manifest.json").read_text())["model"]["requested"] == "tiny-lab"
    song = tmp_path / "song.cocompose"
    run(capsys, "new", song, "--artist", "Ada Tone", "--genre", "rock")
    assert run(capsys, "prime", song, prime_wav, "--model", "tiny-lab")[0] == 0
    with Project.open(song) as project:
        assert project.song.model.name == f"{installed.resolve()}#tiny"
    code, _, err = run(capsys, "generate", song, "--model", "tiny-lb", "--seconds", 0.1, "--seed", 0)
    assert code == 2 and "did you mean tiny-lab" in err

    # A project made with `new --model default` finds the default model by that name.
    named = tmp_path / "named.cocompose"
    run(capsys, "new", named, "--artist", "Ada Tone", "--genre", "rock", "--model", "default")
    code, out, err = run(capsys, "generate", named, "--seconds", 0.1, "--seed", 0, "--branches", 1)
    assert code == 0 and "take 2: seed 0" in out, err
