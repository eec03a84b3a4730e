"""The GUI thread never waits on the engine: a 20 ms QTimer keeps firing, with no gap over 250 ms, while
the window's song is upsampled in the background and new branches are sampled (which overtake it), the
tree filling in as the codes stream."""

from __future__ import annotations

import itertools
import time

import pytest
from PySide6.QtCore import QTimer

from tests.compose_model import write_tiny_bundle
from tests.test_app_flow import JOB_MS, new_song, open_window, run_job

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]
TICK_MS = 20
MAX_GAP_S = 0.25


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def test_the_event_loop_keeps_turning_while_branches_and_a_render_run(qtbot, tmp_path, bundle):
    window = open_window(qtbot, tmp_path / "config", bundle)
    new_song(qtbot, window, tmp_path / "song.cocompose")
    panel = window.generate_panel
    panel.branches.setValue(1)
    panel.seconds.setValue(1.0)
    run_job(qtbot, window, "generate", lambda: panel.request("continue"))  # something to upsample
    qtbot.waitUntil(lambda: len(window._mirror.current_path) == 2)

    ticks: list[float] = []
    timer = QTimer(interval=TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    finished: set[str] = set()

    def on_job(event) -> None:
        if event.state in ("done", "failed", "cancelled") and event.kind in ("upsample", "generate"):
            finished.add(f"{event.kind}:{event.state}")

    window.bridge.jobEvent.connect(on_job)
    started = time.monotonic()
    window.upsample_action.trigger()
    panel.branches.setValue(3)
    panel.seconds.setValue(1.0)
    panel.request("generate")
    qtbot.waitUntil(lambda: {"upsample:done", "generate:done"} <= finished, timeout=JOB_MS)
    timer.stop()
    busy = time.monotonic() - started

    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert busy > 0.5, "the jobs were too quick to tell anything"
    assert max(gaps) < MAX_GAP_S, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
    assert len(ticks) > 0.5 * busy / (TICK_MS / 1000)
    qtbot.waitUntil(lambda: len(window._mirror.children(window._mirror.current_id)) == 3)
