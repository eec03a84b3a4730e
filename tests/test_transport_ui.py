"""The transport bar and its keys on a real offscreen event loop, driving a Player on the JACK dummy card."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QTreeView, QVBoxLayout, QWidget

from cocompose.playback import AudioSource, Player, PlayerState
from tests.jack_loop import Capture, connect_first_output_to_first_input, noise
from ui.transport import TransportBar, TransportKeys, format_time

pytestmark = [pytest.mark.qt, pytest.mark.usefixtures("one_thread")]

SR = 48_000


@pytest.fixture
def rig(qtbot, jack_server):
    player = Player(jack_server.device)
    player.open()
    window = QWidget()
    layout = QVBoxLayout(window)
    bar = TransportBar(player)
    entry = QLineEdit(objectName="lyrics")
    tree = QTreeView()
    for widget in (bar, entry, tree):
        layout.addWidget(widget)
    keys = TransportKeys(bar, window, keep_arrows_for=(QTreeView,))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.setFocus()
    yield player, window, bar, keys, entry, tree
    keys.uninstall()
    player.close()


def test_time_is_shown_in_minutes_seconds_and_hundredths():
    assert format_time(0) == "0:00.00"
    assert format_time(61.257) == "1:01.26"
    assert format_time(-3) == "0:00.00"


def test_space_plays_and_pauses_and_the_bar_follows(rig, qtbot):
    player, window, bar, *_ = rig
    player.load(AudioSource(SR, noise(10.0, SR, seed=30)))
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert player.status().state is PlayerState.PLAYING
    qtbot.waitUntil(lambda: player.position > 0.1, timeout=3000)
    qtbot.waitUntil(lambda: bar.play_button.text() == "Pause", timeout=1000)
    with qtbot.waitSignal(bar.positionChanged, timeout=1000):
        pass  # the bar reports the moving playhead
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert player.status().state is PlayerState.PAUSED
    qtbot.waitUntil(lambda: bar.play_button.text() == "Play", timeout=1000)
    position = player.position
    qtbot.waitUntil(lambda: bar.time_label.text() == f"{format_time(position)} / 0:10.00", timeout=1000)
    assert bar.slider.value() == round(position * 100)


def test_arrows_home_end_seek_and_l_loops(rig, qtbot):
    player, window, bar, *_ = rig
    player.load(AudioSource(SR, noise(20.0, SR, seed=31)))
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert player.position == pytest.approx(5.0)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert player.position == pytest.approx(6.0)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert player.position == pytest.approx(1.0)
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert player.position == pytest.approx(20.0)
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert player.position == 0.0

    qtbot.keyClick(window, Qt.Key.Key_L)  # no selection: loop everything
    assert player.status().loop == (0.0, pytest.approx(20.0))
    assert bar.loop_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert player.status().loop is None
    bar.set_loop_region_provider(lambda: (2.0, 3.5))
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert player.status().loop == (pytest.approx(2.0), pytest.approx(3.5))
    assert player.position == pytest.approx(2.0)
    bar.set_loop_region_provider(lambda: (3.0, 3.0))
    qtbot.keyClick(window, Qt.Key.Key_L)  # off
    qtbot.keyClick(window, Qt.Key.Key_L)  # an empty region is refused, by name, in the bar
    assert player.status().loop is None
    assert bar.message_label.text().startswith("cannot loop: a loop needs")


def test_number_keys_switch_siblings_without_stopping_the_sound(rig, qtbot, jack_server):
    player, window, _, keys, *_ = rig
    siblings = [noise(3.0, SR, seed=40 + i) for i in range(3)]
    sources = [AudioSource(SR, audio) for audio in siblings]
    keys.siblingRequested.connect(lambda n: player.switch(sources[n - 1]))
    player.load(sources[0])
    with Capture(jack_server.device, SR) as capture:
        connect_first_output_to_first_input()
        qtbot.keyClick(window, Qt.Key.Key_Space)
        qtbot.wait(300)
        qtbot.keyClick(window, Qt.Key.Key_2)
        assert player.source is sources[1] and player.status().state is PlayerState.PLAYING
        qtbot.wait(300)
        qtbot.keyClick(window, Qt.Key.Key_3)
        qtbot.wait(300)
        qtbot.keyClick(window, Qt.Key.Key_Space)
        qtbot.wait(50)
    recording = capture.audio()
    start = int(np.flatnonzero(recording)[0])
    end = int(np.flatnonzero(recording)[-1]) + 1
    heard = recording[start:end]
    # Every frame heard is the frame at the same position of one of the siblings, in order 1, 2, 3.
    which = np.full(len(heard), -1)
    for i, audio in enumerate(siblings):
        which[heard == audio[: len(heard)]] = i
    assert (which >= 0).all(), "a frame was heard that no sibling has at that position (a gap or a jump)"
    assert list(dict.fromkeys(which.tolist())) == [0, 1, 2]
    assert len(heard) == pytest.approx(0.9 * SR, rel=0.3)


def test_keys_typed_into_a_text_entry_stay_there(rig, qtbot):
    player, *_, entry, tree = rig
    player.load(AudioSource(SR, noise(10.0, SR, seed=32)))
    entry.setFocus()
    qtbot.keyClicks(entry, "la la 1")
    qtbot.keyClick(entry, Qt.Key.Key_Left)
    assert entry.text() == "la la 1" and entry.cursorPosition() == 6
    assert player.status().state is PlayerState.STOPPED and player.position == 0.0
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Right)  # the tree keeps its arrows
    assert player.position == 0.0
    qtbot.keyClick(tree, Qt.Key.Key_End)  # but not the transport's other keys
    assert player.position == pytest.approx(10.0)


def test_u_asks_for_the_render_but_types_a_u_into_a_text_entry(rig, qtbot):
    _, _, _, keys, entry, tree = rig
    asked = []
    keys.renderRequested.connect(lambda: asked.append(True))
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_U)  # not the tree's type-to-search
    assert asked == [True]
    entry.setFocus()
    qtbot.keyClicks(entry, "uu")
    assert entry.text() == "uu" and asked == [True]


def test_without_a_device_the_bar_says_why_and_keys_do_nothing_harmful(qtbot):
    player = Player("no-such-card")
    window = QWidget()
    bar = TransportBar(player, window)
    keys = TransportKeys(bar, window)
    qtbot.addWidget(window)
    window.show()
    assert bar.message_label.text().startswith("cannot play: ")
    assert not bar.play_button.isEnabled()
    for key in (Qt.Key.Key_Space, Qt.Key.Key_L, Qt.Key.Key_Right, Qt.Key.Key_End, Qt.Key.Key_1):
        qtbot.keyClick(window, key)
    assert player.status().state is PlayerState.UNAVAILABLE
    keys.uninstall()
    player.close()
