"""Label guidance from the musician's side: the Generate panel's Label strength and `cocompose generate
--guidance`. Each starts from the strength the model's bundle.json recommends, reaches the request, is
recorded on the takes, and a take made with it holds exactly the codes the engine draws with that strength
for the same seed, song and labels (and other codes than without guidance).

The tiny test model is untrained, so its labels barely reach the codes, and guidance, which strengthens
the labels' pull, would change nothing. Its top prior's artist and genre rows are scaled up here, which
makes the labels, and so the guidance, decide some of the first draws of a take.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cocompose.audio_io import AudioStatus
from cocompose.cli import main
from cocompose.store import Project
from engine import checkpoint
from engine.api import ComposeEngine, LabelSpec
from engine.bundle import MANIFEST_NAME, BundleManifest
from engine.prior.sampler import SamplingSettings
from tests.compose_model import louden_labels, write_tiny_bundle
from ui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("one_thread")

RECOMMENDED = 2.5
LABEL_GAIN = 100.0  # how much louder the top prior's artist and genre rows are made
TOP_PRIOR = "prior_tiny"  # its file stem in write_tiny_bundle's folder
ARTIST, GENRE, PLANNED_SECONDS = "Ada Tone", "rock", 20.0
TAKE_SECONDS = 0.3
TIMEOUT_MS = 60_000


def write_guided_bundle(folder, recommended: float):
    """The tiny bundle with loud labels, whose bundle.json recommends `recommended` label guidance."""
    write_tiny_bundle(folder)
    top = folder / TOP_PRIOR
    settings = checkpoint.read_settings(top)
    prior = checkpoint.load_model(top, "prior")
    louden_labels(prior, LABEL_GAIN)
    own = ("format", "format_version", "kind", "config", "aliases")  # save_model writes these itself
    checkpoint.save_model(top, prior, "prior", {k: v for k, v in settings.items() if k not in own})
    manifest = BundleManifest.read(folder / MANIFEST_NAME)
    replace(manifest, guidance=recommended).write(folder)
    return folder


@pytest.fixture(scope="module")
def guided_bundle(tmp_path_factory):
    return write_guided_bundle(tmp_path_factory.mktemp("guided"), RECOMMENDED)


@pytest.fixture(scope="module")
def engine(guided_bundle):
    return ComposeEngine.load(guided_bundle)


def engine_takes(engine: ComposeEngine, seeds, guidance: float) -> list[np.ndarray]:
    """What the engine itself draws for new takes at the start of an empty song by ARTIST in GENRE, with
    the app's and the command line's other sampling defaults (temperature 0.98, no top-k or top-p)."""
    n_new = round(TAKE_SECONDS * engine.codes_per_second)
    spec = LabelSpec(ARTIST, GENRE, "", PLANNED_SECONDS)
    settings = SamplingSettings(0.98, 0, 0.0, guidance=guidance)
    rows: list[list[np.ndarray]] = [[] for _ in seeds]
    for piece in engine.generate(np.zeros(0, np.int64), n_new, list(seeds), spec, settings):
        for row, branch in enumerate(piece.branches):
            rows[branch].append(piece.codes[row])
    return [np.concatenate(r) for r in rows]


def assert_takes_equal(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def some_take_differs(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_guidance_changes_what_the_loud_label_model_draws(engine):
    # Without this the equivalences below could not tell guided takes from unguided ones.
    seeds = (7, 8, 9)
    assert some_take_differs(engine_takes(engine, seeds, 0.0), engine_takes(engine, seeds, 4.0))
    assert engine.recommended_guidance == RECOMMENDED


# -- the command line ------------------------------------------------------------------------------
def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def takes_after(song, parent: int) -> list:
    with Project.open(song) as project:
        return [project.tree.node(child.id) for child in project.tree.children(parent)]


def test_generate_guidance_reaches_the_takes_and_defaults_to_the_models(
    tmp_path, guided_bundle, engine, capsys
):
    song = tmp_path / "song.cocompose"
    code, _, err = run(
        capsys, "new", song, "--artist", ARTIST, "--genre", GENRE, "--seconds", PLANNED_SECONDS
    )
    assert code == 0, err
    common = ("--model", guided_bundle, "--from", 1, "--seconds", TAKE_SECONDS, "--seed", 7)

    code, out, err = run(capsys, "generate", song, *common, "--branches", 3, "--guidance", 4)
    assert code == 0, err
    assert "as the model recommends" not in out  # the user chose
    guided = takes_after(song, 1)
    assert [t.sampling.guidance for t in guided] == [4.0, 4.0, 4.0]
    assert_takes_equal([t.codes.to_numpy() for t in guided], engine_takes(engine, (7, 8, 9), 4.0))

    code, out, err = run(capsys, "generate", song, *common, "--branches", 3, "--guidance", 0)
    assert code == 0, err
    plain = takes_after(song, 1)[3:]
    assert [t.sampling.guidance for t in plain] == [0.0, 0.0, 0.0]
    assert_takes_equal([t.codes.to_numpy() for t in plain], engine_takes(engine, (7, 8, 9), 0.0))
    assert some_take_differs([t.codes.to_numpy() for t in guided], [t.codes.to_numpy() for t in plain])

    # No --guidance: the strength the model's bundle.json recommends, said once.
    code, out, err = run(capsys, "generate", song, *common, "--branches", 1)
    assert code == 0, err
    assert f"label guidance {RECOMMENDED:g}, as the model recommends" in out
    (default,) = takes_after(song, 1)[6:]
    assert default.sampling.guidance == RECOMMENDED
    assert_takes_equal([default.codes.to_numpy()], engine_takes(engine, (7,), RECOMMENDED))

    code, out, _ = run(capsys, "info", song)
    assert code == 0
    assert out.count("guide 4 ") == 3 and out.count(f"guide {RECOMMENDED:g} ") == 1
    assert "guide 0" not in out  # takes sampled without guidance read as before


def test_generate_refuses_a_guidance_out_of_range_and_says_its_default(tmp_path, guided_bundle, capsys):
    song = tmp_path / "song.cocompose"
    run(capsys, "new", song, "--artist", ARTIST, "--genre", GENRE)
    for bad in (11, -1):
        code, _, err = run(capsys, "generate", song, "--model", guided_bundle, "--seconds", TAKE_SECONDS,
                           "--guidance", bad)  # fmt: skip
        assert code == 2 and "label guidance must be in [0, 10]" in err
    assert takes_after(song, 1) == []
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "the strength the model recommends" in " ".join(capsys.readouterr().out.split())


def test_one_shot_songs_take_the_models_guidance_unless_told(tmp_path, guided_bundle, capsys):
    # --out DIR checks its request before the model loads, so the recommendation is filled in after.
    for extra, strength in (((), RECOMMENDED), (("--guidance", 4), 4.0)):
        out = tmp_path / f"songs-{strength:g}"
        code, _, err = run(capsys, "generate", "--out", out, "--model", guided_bundle, "--artist", ARTIST,
                           "--genre", GENRE, "--seconds", TAKE_SECONDS, "--seed", 7, *extra)  # fmt: skip
        assert code == 0, err
        assert json.loads((out / "manifest.json").read_text())["settings"]["guidance"] == strength


# -- the app ---------------------------------------------------------------------------------------
SILENT = AudioStatus(available=False, reason="no sound card in the test")


def wait_for_model(qtbot, window: MainWindow, folder) -> None:
    qtbot.waitUntil(lambda: window._model is not None and str(folder.resolve()) in window._model.reference,
                    timeout=TIMEOUT_MS)  # fmt: skip


def generation_finished(event) -> bool:
    return event.kind == "generate" and event.state in ("done", "failed", "cancelled")


@pytest.mark.qt
def test_the_panel_starts_at_the_models_strength_and_its_value_makes_the_takes(
    qtbot, tmp_path, guided_bundle, engine
):
    window = MainWindow(SILENT, state_dir=tmp_path / "config", model=guided_bundle, offer_reopen=False)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    wait_for_model(qtbot, window, guided_bundle)
    panel = window.generate_panel
    assert panel.guidance.value() == RECOMMENDED
    assert f"recommends {RECOMMENDED:g}" in panel.guidance.toolTip()

    dialog = window.new_song_dialog()
    dialog.path.setText(str(tmp_path / "song.cocompose"))
    dialog.artist.setText(ARTIST)
    dialog.genre.setText(GENRE)
    dialog.seconds.setValue(PLANNED_SECONDS)
    with qtbot.waitSignal(window.bridge.projectChanged, timeout=TIMEOUT_MS):
        dialog.accept()
    qtbot.waitUntil(lambda: len(window._mirror) == 1)

    # The musician turns the strength up: that value, not the recommendation, makes the takes.
    panel.guidance.setValue(4.0)
    panel.branches.setValue(2)
    panel.seconds.setValue(TAKE_SECONDS)
    seed = 7  # seeds whose guided takes differ from unguided ones (a drawn seed might give the same)
    panel.set_seed(seed)
    with qtbot.waitSignal(window.bridge.jobEvent, check_params_cb=generation_finished,
                          timeout=TIMEOUT_MS) as finished:  # fmt: skip
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].state == "done", finished.args[0].message
    qtbot.waitUntil(lambda: len(window._mirror.children(1)) == 2)

    with window.session.lock:
        project = window.session.project
        request = project.jobs()[-1].detail  # the GenerateRequest, as the jobs table keeps it
        takes = [project.tree.node(child.id) for child in project.tree.children(1)]
    assert request["request"] == "GenerateRequest" and request["sampling"]["guidance"] == 4.0
    assert [t.sampling.guidance for t in takes] == [4.0, 4.0]
    assert [t.sampling.seed for t in takes] == [seed, seed + 1]
    expected = engine_takes(engine, (seed, seed + 1), 4.0)
    assert_takes_equal([t.codes.to_numpy() for t in takes], expected)
    assert some_take_differs(expected, engine_takes(engine, (seed, seed + 1), 0.0))

    # The same model loaded again (another precision) keeps the strength the musician chose...
    with qtbot.waitSignal(window.bridge.modelChanged, timeout=TIMEOUT_MS):
        window.apply_settings(replace(window.session.settings, precision="bfloat16"))
    assert window._model.reference.startswith(str(guided_bundle.resolve()))
    assert panel.guidance.value() == 4.0
    # ...and another model starts from its own recommendation (this one names none).
    plain = write_tiny_bundle(tmp_path / "plain")
    window.load_model(plain)
    wait_for_model(qtbot, window, plain)
    assert panel.guidance.value() == 0.0 and panel.guidance.text() == "off"
    window.close()
