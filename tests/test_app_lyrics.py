"""The lyrics editor of the real main window shows how far the song up to the take under the cursor has
sung: the shaded range is what `ComposeEngine.lyric_progress` says for that path, computed here again
from the window's own copy of the tree. A model without an alignment head says it sings no lyrics."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cocompose.service.runners import label_spec
from cocompose.service.upsampling import conditioning_changes
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
