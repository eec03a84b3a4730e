"""The tempo row of the Conditioning panel, on a real (offscreen) event loop: shown only for a model with a
beat clock, it shows the genre's usual tempo greyed until the musician ticks it and sets their own, which
"Change from this take" stores in the song and a take then shows again."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from cocompose.song.records import Tempo
from cocompose.timeline import voice_label
from tests.compose_model import write_tiny_bundle
from tests.test_app_flow import JOB_MS, new_song, open_window, run_job
from ui.qt_song_tree_model import Column

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]


def test_the_tempo_row_sets_a_songs_tempo_for_a_model_with_a_beat_clock(qtbot, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "clock", genre_tempi={"rock": [120.0, 4], "jazz": [90.0, 3]})
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    window.select_take(1)
    panel = window.conditioning_panel
    assert not panel.tempo_row.isHidden() and not panel.tempo_set.isChecked()
    assert (panel.tempo.value(), panel.beats_per_bar.value(), panel.tempo.isEnabled()) == (120.0, 4, False)
    panel.genre.setText("jazz")
    assert (panel.tempo.value(), panel.beats_per_bar.value()) == (90.0, 3)
    assert panel.conditioning().tempo is None, "unticked: the genre's usual tempo, whatever it is"

    panel.genre.setText("rock")
    panel.tempo_set.setChecked(True)
    assert panel.tempo.isEnabled()
    panel.tempo.setValue(96.0)
    panel.beats_per_bar.setValue(3)
    qtbot.mouseClick(panel.swap_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(1).tempo == Tempo(96.0, 3), timeout=JOB_MS)
    model = window.tree_model
    assert model.data(model.index_of(1, Column.CONDITIONING)) == "Ada Tone / rock / 96 bpm"
    assert voice_label(window._mirror.conditioning_at(1)) == "Ada Tone · rock · 96 bpm"

    window.generate_panel.branches.setValue(1)
    window.generate_panel.seconds.setValue(0.5)
    run_job(qtbot, window, "generate", lambda: window.generate_panel.request("generate"))
    take = window._mirror.children(1)[0].id
    assert window._mirror.conditioning_at(take).tempo == Tempo(96.0, 3)
    panel.tempo_set.setChecked(False)
    window.select_take(take)
    assert panel.tempo_set.isChecked() and (panel.tempo.value(), panel.beats_per_bar.value()) == (96.0, 3)


def test_a_model_without_a_beat_clock_hides_the_tempo_and_keeps_a_songs_own(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path / "config", write_tiny_bundle(tmp_path / "plain"))
    new_song(qtbot, window, tmp_path / "song.cocompose")
    window.select_take(1)
    panel = window.conditioning_panel
    assert panel.tempo_row.isHidden() and panel.tempo_set.isHidden()
    assert panel.conditioning().tempo is None
    shown = panel.conditioning()
    panel.show_conditioning(replace(shown, tempo=Tempo(140.0, 4)))
    assert panel.conditioning().tempo == Tempo(140.0, 4), "a tempo set with another model is not dropped"


def test_a_riffs_tempo_shown_and_kept_keeps_its_bar_lines_and_a_new_one_replaces_it(qtbot):
    from cocompose.song import Conditioning
    from ui.conditioning_panel import ConditioningPanel

    panel = ConditioningPanel()
    qtbot.addWidget(panel)
    panel.set_beat_clock((("rock", 120.0, 4),))
    riff = Tempo(95.9, 4, 0.25, from_riff=True)
    panel.show_conditioning(Conditioning("Ada Tone", "rock", tempo=riff))
    assert panel.tempo_set.isChecked() and panel.tempo.value() == 95.9
    panel.artist.setText("Bo Noise")
    assert panel.conditioning().tempo == riff, "a change of voice alone keeps the riff's bar lines"
    panel.tempo.setValue(100.0)
    assert panel.conditioning().tempo == Tempo(100.0, 4)
