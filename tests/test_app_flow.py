"""The real main window on a real (offscreen) event loop with the tiny test model: make a song, generate
branches, switch siblings with number keys, pick with Enter, continue, change the artist mid-song, undo and
redo it, export a WAV, quit, reopen from the recent list: the tree is as it was. Also the offer to reopen
what was open when the app died, an error that leaves the app running, and a generation paused and resumed
from the jobs panel.

Waiting is on the bridge's signals (a job's "done" event) or on a condition about the window's own state,
never on a blind sleep."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from cocompose.app_state import AppState, load_state, save_state
from cocompose.audio_io import AudioStatus
from cocompose.song import Conditioning
from cocompose.timeline import conditioning_sections
from cocompose.tree_mirror import TreeSnapshot
from tests.compose_model import write_tiny_bundle
from ui.main_window import MainWindow
from ui.qt_song_tree_model import Column

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]
SILENT = AudioStatus(available=False, reason="no sound card in the test")
JACK = AudioStatus(available=True, reason="", default_output="system", host_api="JACK Audio Connection Kit")
JOB_MS = 60_000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def open_window(qtbot, config, bundle, offer_reopen=False, jack_server=None) -> MainWindow:
    """The real window on `bundle`, shown, its model loaded; with `jack_server`, playing and recording
    through the JACK dummy card, else with no sound device."""
    if jack_server is None:
        window = MainWindow(SILENT, state_dir=config, model=bundle, offer_reopen=offer_reopen)
    else:
        window = MainWindow(JACK, state_dir=config, model=bundle, offer_reopen=offer_reopen,
                            output_device=jack_server.device, input_device=jack_server.device)  # fmt: skip
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    qtbot.waitUntil(lambda: window._model is not None, timeout=JOB_MS)
    return window


def job_done(kind: str):
    return lambda event: event.kind == kind and event.state in ("done", "failed", "cancelled")


def run_job(qtbot, window: MainWindow, kind: str, start) -> None:
    """Start something that runs a job of `kind` and wait until the window has heard it finish."""
    with qtbot.waitSignal(window.bridge.jobEvent, check_params_cb=job_done(kind), timeout=JOB_MS) as done:
        start()
    assert done.args[0].state == "done", done.args[0].message


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def children_of(window: MainWindow, node_id: int) -> list[int]:
    return [node.id for node in window._mirror.children(node_id)]


def new_song(qtbot, window: MainWindow, path) -> None:
    dialog = window.new_song_dialog()
    dialog.path.setText(str(path))
    dialog.artist.setText("Ada Tone")
    dialog.genre.setText("rock")
    dialog.seconds.setValue(20)
    with qtbot.waitSignal(window.bridge.projectChanged, timeout=JOB_MS):
        dialog.accept()
    qtbot.waitUntil(lambda: len(window._mirror) == 1)


def test_make_a_song_export_it_quit_and_reopen(qtbot, tmp_path, bundle):
    config, song = tmp_path / "config", tmp_path / "song.cocompose"
    window = open_window(qtbot, config, bundle)
    assert window.conditioning_panel.artist.names_matching("TON") == ["ada_tone"]
    new_song(qtbot, window, song)
    assert window.windowTitle().startswith("song")

    # Three branches after the start; their seeds are the shown one and the next two.
    panel = window.generate_panel
    panel.branches.setValue(3)
    panel.seconds.setValue(0.5)
    seed = panel.current_seed()
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.generate_button))
    qtbot.waitUntil(lambda: len(children_of(window, 1)) == 3)
    takes = children_of(window, 1)
    assert [window._mirror.node(i).sampling.seed for i in takes] == [seed, seed + 1, seed + 2]
    model = window.tree_model
    assert model.data(model.index_of(takes[1], Column.SEED)) == str(seed + 1)

    # Number keys move among the siblings; Enter picks.
    window.select_take(takes[0])
    window.tree_view.setFocus()
    qtbot.keyClick(window.tree_view, Qt.Key.Key_2)
    assert window.selected_take() == takes[1]
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._mirror.current_id == takes[1])

    # Continue with one branch: the song grows by it (picked as soon as it is done).
    panel.branches.setValue(1)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.continue_button))
    qtbot.waitUntil(lambda: len(window._mirror.current_path) == 3)
    grown = window._mirror.current_id
    assert window._mirror.node(grown).parent_id == takes[1]
    assert [s.node_id for s in window.timeline.segments] == [1, takes[1], grown]
    assert window.timeline.branch_points_s() == [0.0]  # the first take was chosen among three

    # Another artist from the new take on: a duet. Undo and redo it with the keyboard.
    window.select_take(grown)
    window.conditioning_panel.artist.setText("Bo Noise")
    qtbot.mouseClick(window.conditioning_panel.swap_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(grown).artist == "Bo Noise")
    assert window._mirror.conditioning_at(takes[1]).artist == "Ada Tone"
    assert model.data(model.index_of(grown, Column.CONDITIONING)) == "Bo Noise / rock"
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.waitUntil(window.undo_action.isEnabled)
    window.tree_view.setFocus()
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(grown).artist == "Ada Tone")
    qtbot.waitUntil(window.redo_action.isEnabled)
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Z, redo)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(grown).artist == "Bo Noise")

    # Export a WAV of the current song through the dialog.
    out = tmp_path / "song.wav"
    dialog = window.export_dialog()
    dialog.path.setText(str(out))
    dialog.normalise.setChecked(False)
    run_job(qtbot, window, "export", dialog.accept)
    audio, rate = sf.read(out)
    codes = len(window._mirror.path_codes(grown))
    assert rate == window._model.sample_rate
    assert len(audio) == pytest.approx(codes * rate / window._model.codes_per_second, abs=1)
    assert window.jobs_panel.state_of(-1) == "done"
    # The sidecar and the tags say who sings where: Bo Noise from the relabelled last take on.
    track = json.loads(out.with_name("song.wav.json").read_text())["track"]
    starts = [(s["start_s"], s["artist"]) for s in track["sections"]]
    grown_at = (codes - len(window._mirror.node(grown).codes)) / window._model.codes_per_second
    assert starts == [(0.0, "Ada Tone"), (pytest.approx(grown_at, abs=1e-3), "Bo Noise")]
    with sf.SoundFile(out) as tagged:
        assert tagged.artist == "Ada Tone & Bo Noise" and tagged.genre == "rock"

    before = TreeSnapshot.of(window._mirror)
    window.close()
    assert load_state(config).open_project is None  # a clean quit: nothing to offer next time

    again = open_window(qtbot, config, bundle)
    recent = again.recent_menu.actions()
    assert [a.text() for a in recent] == ["song.cocompose"]
    with qtbot.waitSignal(again.bridge.projectChanged, timeout=JOB_MS):
        recent[0].trigger()
    qtbot.waitUntil(lambda: TreeSnapshot.of(again._mirror) == before)
    assert again.last_error == ""


def test_the_song_open_when_the_app_died_is_offered_again(qtbot, tmp_path, bundle):
    config, song = tmp_path / "config", tmp_path / "song.cocompose"
    first = open_window(qtbot, config, bundle)
    new_song(qtbot, first, song)
    first.close()
    save_state(AppState(recent=(str(song),), open_project=str(song)), config)  # what a crash leaves

    window = open_window(qtbot, config, bundle, offer_reopen=True)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "reopenBox") is not None)
    box = window.findChild(QMessageBox, "reopenBox")
    assert "song.cocompose" in box.text()
    with qtbot.waitSignal(window.bridge.projectChanged, timeout=JOB_MS):
        box.button(QMessageBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: window._project_path == song)


def test_a_bad_request_is_explained_and_the_app_keeps_working(qtbot, tmp_path, bundle):
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    window.select_take(1)
    window.conditioning_panel.artist.setText("Ada Tome")
    with qtbot.waitSignal(window.bridge.errorRaised, timeout=JOB_MS):
        qtbot.mouseClick(window.conditioning_panel.swap_button, Qt.MouseButton.LeftButton)
    box = window.findChild(QMessageBox, "errorBox")
    qtbot.waitUntil(box.isVisible)
    assert "unknown artist 'Ada Tome'; nearest: ada_tone" in box.text()
    box.accept()
    assert window._mirror.conditioning_at(1).artist == "Ada Tone"

    # Variations of the start are refused by name; generation still works afterwards.
    window.generate_panel.branches.setValue(2)
    window.generate_panel.seconds.setValue(0.2)
    window.generate_panel.request("variations")
    assert "no variations" in window.last_error
    # New takes sing what the Conditioning panel shows, so its misspelt name is refused again, by name.
    with qtbot.waitSignal(window.bridge.errorRaised, timeout=JOB_MS):
        window.generate_panel.request("generate")
    assert "unknown artist 'Ada Tome'" in window.last_error and len(children_of(window, 1)) == 0
    window.conditioning_panel.artist.setText("Ada Tone")
    run_job(qtbot, window, "generate", lambda: window.generate_panel.request("generate"))
    qtbot.waitUntil(lambda: len(children_of(window, 1)) == 2)


def test_a_generation_is_paused_and_resumed_from_the_jobs_panel(qtbot, tmp_path, bundle):
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    panel, jobs = window.generate_panel, window.jobs_panel
    panel.branches.setValue(1)
    panel.seconds.setValue(8.0)  # seconds of work for the tiny model: it is paused long before the end

    def created(event):
        return event.kind == "generate" and bool(event.node_ids)

    with qtbot.waitSignal(window.bridge.jobEvent, check_params_cb=created, timeout=JOB_MS) as started:
        click(qtbot, panel.generate_button)
    job_id, take = started.args[0].job_id, started.args[0].node_ids[0]
    qtbot.waitUntil(
        lambda: take in window._mirror and len(window._mirror.node(take).codes) > 0, timeout=JOB_MS
    )
    assert jobs.state_of(job_id) == "running" and jobs.pause_button(job_id).text() == "Pause"
    click(qtbot, jobs.pause_button(job_id))
    qtbot.waitUntil(lambda: jobs.state_of(job_id) == "paused", timeout=JOB_MS)
    assert jobs.pause_button(job_id).text() == "Resume" and jobs.cancel_button(job_id).isEnabled()

    def shown() -> int:
        return len(window._mirror.node(take).codes)

    stored = window.session.service.read(lambda p: len(p.tree.node(take).codes))
    qtbot.waitUntil(lambda: shown() == stored)
    # While it is paused the worker is free: other branches are sampled, and the paused take stands still.
    window.select_take(1)
    panel.seconds.setValue(0.2)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.generate_button))
    qtbot.waitUntil(lambda: len(children_of(window, 1)) == 2)
    assert shown() == stored and 0 < stored < round(8.0 * window._model.codes_per_second)
    assert jobs.state_of(job_id) == "paused" and window.last_error == ""

    with qtbot.waitSignal(
        window.bridge.jobEvent, check_params_cb=job_done("generate"), timeout=JOB_MS
    ) as end:
        click(qtbot, jobs.pause_button(job_id))
    assert (end.args[0].job_id, end.args[0].state) == (job_id, "done")
    qtbot.waitUntil(lambda: shown() == round(8.0 * window._model.codes_per_second), timeout=JOB_MS)
    assert jobs.state_of(job_id) == "done" and not jobs.pause_button(job_id).isEnabled()
    assert window.last_error == ""


def test_change_the_voice_at_a_moment_of_the_timeline_makes_a_duet(qtbot, tmp_path, bundle):
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    panel = window.generate_panel
    panel.branches.setValue(1)
    panel.seconds.setValue(1.0)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.continue_button))
    qtbot.waitUntil(lambda: len(window._mirror.current_path) == 2)
    first = window._mirror.current_id
    panel.seconds.setValue(0.5)
    run_job(qtbot, window, "generate", lambda: click(qtbot, panel.continue_button))
    qtbot.waitUntil(lambda: len(window._mirror.current_path) == 3)
    last = window._mirror.current_id
    rate = window._model.codes_per_second
    whole = window._mirror.node(first).codes
    song_end = len(window._mirror.path_codes(last)) / rate
    before = TreeSnapshot.of(window._mirror)
    assert [s.label for s in window.timeline.sections] == ["Ada Tone · rock"]

    # The menu offers the voice in the Conditioning panel, and says what is missing when there is none.
    voice = window.conditioning_panel
    voice.artist.setText("")
    action = window.timeline.context_menu_at(0.6).findChild(QAction, "changeVoiceAction")
    assert not action.isEnabled() and action.toolTip() == "Choose an artist and a genre first."
    voice.artist.setText("Bo Noise")
    voice.genre.setText("rock")
    action = window.timeline.context_menu_at(0.6).findChild(QAction, "changeVoiceAction")
    assert action.isEnabled() and action.text() == "Change the voice here to Bo Noise · rock"

    # 0.6 s is inside the first take: it is cut at the nearest code, and new takes sung by Bo Noise go
    # on from there; what followed the cut stays as it was sampled, a branch of its own.
    at = round(0.6 * rate)
    panel.branches.setValue(2)
    panel.seconds.setValue(0.3)
    run_job(qtbot, window, "generate", action.trigger)
    cut = at / rate
    assert window._mirror.node(first).codes == whole.split(at)[0]  # the first part is untouched
    qtbot.waitUntil(lambda: len(children_of(window, first)) == 3)
    rest = window._mirror.path_to(last)[2]
    assert window._mirror.node(rest).codes == whole.split(at)[1]
    assert window._mirror.path_to(last) == (1, first, rest, last)
    assert window._mirror.conditioning_at(last).artist == "Ada Tone"  # nothing sampled is relabelled
    duet = [n for n in children_of(window, first) if n != rest]
    n_new = round(0.3 * rate)
    # The window's copy of the tree syncs a moment after the job's end is announced.
    qtbot.waitUntil(lambda: all(len(window._mirror.node(t).codes) == n_new for t in duet))
    for take in duet:
        node = window._mirror.node(take)
        assert node.conditioning == Conditioning("Bo Noise", "rock")  # the new takes carry the voice
        assert len(node.codes) == n_new
    sections = conditioning_sections(window._mirror, window._mirror.path_to(duet[0]), rate)
    assert [(s.start_s, s.label) for s in sections] == [(0.0, "Ada Tone · rock"), (cut, "Bo Noise · rock")]

    # The duet plays with its change marked; picking it makes the timeline show the change.
    window.select_take(duet[0])
    qtbot.waitUntil(lambda: ("conditioning", pytest.approx(cut)) in window.playback.waveform.markers)
    window.session.pick(duet[0])
    qtbot.waitUntil(lambda: window.timeline.changes_s() == [pytest.approx(cut)])

    # Ctrl+Z takes back the new takes, then the cut: the song is as it was.
    with qtbot.waitActive(window):
        window.activateWindow()
    window.tree_view.setFocus()
    undone = []
    while not undone or undone[-1] != "&Undo Cut for a new voice":
        assert len(undone) < 3, undone  # at most: the pick, the new takes, the cut
        undone.append(window.undo_action.text())
        qtbot.keyClick(window.tree_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda label=undone[-1]: window.undo_action.text() != label)
    qtbot.waitUntil(lambda: TreeSnapshot.of(window._mirror) == before)
    assert window.last_error == ""  # nothing gathered for a take the undo took away was reported

    # A point past the end of the song is refused by name; nothing changes.
    window.timeline.voiceChangeRequested.emit(song_end + 1.0)
    qtbot.waitUntil(lambda: "nothing at" in window.last_error)
    assert TreeSnapshot.of(window._mirror) == before
