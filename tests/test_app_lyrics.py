"""The lyrics editor of the real main window shows how far the song up to the take under the cursor has
sung: the shaded range is what `ComposeEngine.lyric_progress` says for that path, computed here again
from the window's own copy of the tree. A model without an alignment head says it sings no lyrics."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cocompose.service.runners import label_spec
from cocompose.service.upsampling import conditioning_changes
from cocompose.song import NodeState
from tests.compose_model import write_tiny_bundle
from tests.test_app_flow import JOB_MS, children_of, click, new_song, open_window, run_job
from ui.conditioning_panel import NO_LYRICS_MODEL, utf16_position

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]

LYRICS = "Über die Brücke 🎵 and over the river,\nla la la — the chorus comes back again and again."


def highlighted(window) -> list[tuple[int, int, bool]]:
    """(start, end, underlined) of each extra selection drawn over the lyrics editor."""
    found = []
    for selection in window.conditioning_panel.lyrics.extraSelections():
        cursor = selection.cursor
        found.append((cursor.selectionStart(), cursor.selectionEnd(), selection.format.fontUnderline()))
    return found


def engine_progress(window, node_id: int):
    """What the engine says for the path up to node_id, from the window's mirror of the tree."""
    tree, engine = window._mirror, window.session.engine
    codes = tree.path_codes(node_id).to_numpy()
    seconds = max(window._summary.song.planned_seconds, len(codes) / engine.codes_per_second)
    specs = [(at, label_spec(c, seconds)) for at, c in conditioning_changes(tree, node_id, 0, len(codes))]
    return engine.lyric_progress(codes, specs)


def test_the_sung_lyrics_are_shaded_as_the_engine_says(qtbot, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "bundle", lyric_alignment=True)
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    panel = window.conditioning_panel

    # Lyrics from the start of the song on.
    window.select_take(1)
    panel.lyrics.setPlainText(LYRICS)
    click(qtbot, panel.swap_button)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(1).lyrics == LYRICS)
    qtbot.waitUntil(lambda: panel.lyrics_progress.text() == f"sung: 0 of {len(LYRICS)} characters")
    assert highlighted(window) == []

    generate = window.generate_panel
    generate.branches.setValue(1)
    generate.seconds.setValue(1.5)
    run_job(qtbot, window, "generate", lambda: click(qtbot, generate.continue_button))
    qtbot.waitUntil(lambda: len(children_of(window, 1)) == 1)
    take = children_of(window, 1)[0]
    # The window's copy of the tree has the take's last codes (its update follows the job's end).
    qtbot.waitUntil(lambda: window._mirror.node(take).state is NodeState.DONE)
    window.select_take(take)
    progress = engine_progress(window, take)
    assert progress.n_codes == len(window._mirror.path_codes(take)) > 0
    sung = progress.sung(LYRICS)
    assert 0 < sung <= len(LYRICS)
    qtbot.waitUntil(lambda: panel.lyrics_progress.text() == f"sung: {sung} of {len(LYRICS)} characters")
    assert highlighted(window) == [(0, utf16_position(LYRICS, sung), False)]
    assert panel.lyrics.toPlainText() == LYRICS  # drawn over the text, never written into it

    # The session's answer is the engine's, and asking again for the same path computes nothing.
    session = window.session
    first = session.lyric_progress(take).result(timeout=JOB_MS / 1000)
    assert session.lyric_progress(take).result(timeout=JOB_MS / 1000) is first
    np.testing.assert_array_equal(first.chars, progress.chars)
    np.testing.assert_array_equal(first.tokens, progress.tokens)

    # The playhead's character is underlined: the one the code under it sings.
    code = progress.n_codes // 2
    panel.set_playhead_code(code)
    at = progress.chars[code]
    assert highlighted(window)[-1] == (utf16_position(LYRICS, at), utf16_position(LYRICS, at + 1), True)
    panel.set_playhead_code(None)

    # Edited lyrics are not what was sung: no shading until they are applied.
    panel.lyrics.setPlainText(LYRICS + " more")
    assert highlighted(window) == [] and panel.lyrics_progress.text().startswith("Edited")
    panel.lyrics.setPlainText(LYRICS)
    assert highlighted(window) == [(0, utf16_position(LYRICS, sung), False)]

    # Another take under the cursor: the start of the song has sung nothing yet.
    window.select_take(1)
    qtbot.waitUntil(lambda: panel.lyrics_progress.text() == f"sung: 0 of {len(LYRICS)} characters")
    assert highlighted(window) == []
    window.close()


def test_a_model_without_lyrics_says_so(qtbot, tmp_path):
    bundle = write_tiny_bundle(tmp_path / "bundle", upsamplers=False)
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    window.select_take(1)
    panel = window.conditioning_panel
    panel.lyrics.setPlainText(LYRICS)
    qtbot.mouseClick(panel.swap_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(1).lyrics == LYRICS, timeout=JOB_MS)
    qtbot.waitUntil(lambda: panel.lyrics_progress.text() == NO_LYRICS_MODEL)
    assert highlighted(window) == []
    window.close()


@pytest.mark.audio
def test_a_growing_take_updates_and_the_playhead_is_underlined(qtbot, tmp_path, jack_server):
    bundle = write_tiny_bundle(tmp_path / "bundle", lyric_alignment=True, audible=True)
    window = open_window(qtbot, tmp_path / "config", bundle, jack_server=jack_server)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    panel = window.conditioning_panel
    window.select_take(1)
    panel.lyrics.setPlainText(LYRICS)
    click(qtbot, panel.swap_button)
    qtbot.waitUntil(lambda: window._mirror.conditioning_at(1).lyrics == LYRICS)

    # A long take: its progress is shown (and redone) while it is still being sampled.
    window.generate_panel.branches.setValue(1)
    window.generate_panel.seconds.setValue(60.0)

    def created(event):
        return event.kind == "generate" and bool(event.node_ids)

    with qtbot.waitSignal(window.bridge.jobEvent, check_params_cb=created, timeout=JOB_MS) as started:
        click(qtbot, window.generate_panel.generate_button)
    job_id, take = started.args[0].job_id, started.args[0].node_ids[0]
    qtbot.waitUntil(lambda: take in window._mirror, timeout=JOB_MS)
    window.select_take(take)

    def shown():
        progress = panel._progress
        return 0 if progress is None or window.lyrics.key[1] != take else progress.n_codes

    qtbot.waitUntil(lambda: shown() > 0, timeout=JOB_MS)
    first = shown()
    qtbot.waitUntil(lambda: shown() > first, timeout=JOB_MS)
    assert window.jobs_panel.state_of(job_id) == "running"

    # While it plays, the character at the playhead is underlined.
    qtbot.waitUntil(lambda: window.playing_take() == take, timeout=JOB_MS)
    player = window.playback.player
    window.tree_view.setFocus()
    qtbot.keyClick(window.tree_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: player.position > 0.3, timeout=10_000)
    qtbot.waitUntil(lambda: any(underlined for *_, underlined in highlighted(window)), timeout=10_000)
    code = panel._playhead_code
    assert abs(code - player.position * window._codes_per_second()) < 0.5 * window._codes_per_second()
    at = panel._progress.char_at(code, LYRICS)
    assert highlighted(window)[-1] == (utf16_position(LYRICS, at), utf16_position(LYRICS, at + 1), True)
    player.stop()
    qtbot.waitUntil(lambda: not any(underlined for *_, underlined in highlighted(window)), timeout=10_000)
    window.session.cancel(job_id)
    qtbot.waitUntil(lambda: window.jobs_panel.state_of(job_id) == "cancelled", timeout=JOB_MS)
    window.close()
