"""The sound card goes away under the real main window: the window says so and composing goes on.

Each case runs the window in a child process with a JACK server of its own, and kills that server: the
session's JACK card (used by the other audio tests) stays up, and PortAudio, which cannot shut down once
its server is gone, dies with the child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.child_process import run_or_show_stacks
from tests.compose_model import write_tiny_bundle

pytestmark = [pytest.mark.qt, pytest.mark.audio]

# Shared by both probes: a window on the tiny model with a new song, on the child's own JACK server.
PROBE_SETUP = """
import os, shlex, subprocess, sys, time
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
jackd = subprocess.Popen(shlex.split(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
from PySide6.QtWidgets import QApplication
from cocompose.audio_io import audio_status
from ui.main_window import MainWindow
from ui.record_dialog import RecordDialog

app = QApplication([])
work = Path(sys.argv[3])

def wait_until(condition, seconds=60.0, what="it"):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            print(f"timeout waiting for {what}", flush=True)
            os._exit(3)
        app.processEvents()
        time.sleep(0.01)

window = MainWindow(audio_status(), state_dir=work / "config", model=Path(sys.argv[2]), offer_reopen=False)
window.show()
wait_until(lambda: window._model is not None, what="the model")
dialog = window.new_song_dialog()
dialog.path.setText(str(work / "song.cocompose"))
dialog.artist.setText("Ada Tone")
dialog.genre.setText("rock")
dialog.accept()
wait_until(lambda: len(window._mirror) == 1, what="the song")
finished = []
window.bridge.jobEvent.connect(lambda event: event.state in ("done", "failed") and finished.append(event))

def generate(seconds):
    finished.clear()
    window.generate_panel.branches.setValue(1)
    window.generate_panel.seconds.setValue(seconds)
    window.generate_panel.generate_button.click()
    wait_until(lambda: finished, what="the generation")
    print(finished[0].state, flush=True)
"""

PLAYING_PROBE = (
    PROBE_SETUP
    + """
generate(3.0)
take = window._mirror.children(1)[0].id
window.select_take(take)
wait_until(lambda: window.playing_take() == take, what="the take to load")
window.play_action.trigger()
player = window.playback.player
wait_until(lambda: player.status().state.value == "playing", what="the sound")
time.sleep(0.3)
jackd.terminate(); jackd.wait()
wait_until(lambda: window.player_label.isVisible() and "stopped" in window.player_label.text(), seconds=10,
           what="the status bar")
print(window.player_label.text(), flush=True)
generate(1.0)  # composing goes on without a sound card
print(len(window._mirror.children(take)), flush=True)
window.play_action.trigger()  # asking to play again answers, and does not hang
app.processEvents()
print(player.status().state.value, flush=True)
os._exit(0)
"""
)

RECORDING_PROBE = (
    PROBE_SETUP
    + """
window.record_action.trigger()
wait_until(lambda: window.findChild(RecordDialog, "recordDialog") is not None, what="the record dialog")
recorder = window.findChild(RecordDialog, "recordDialog").recorder
dialog = window.findChild(RecordDialog, "recordDialog")
dialog.beats.setValue(0)
dialog.record_button.click()
wait_until(lambda: recorder.status().seconds > 0.3, what="some recording")
jackd.terminate(); jackd.wait()
wait_until(lambda: recorder.status().state.value == "failed", seconds=10, what="the recorder to fail")
wait_until(lambda: dialog.take() is not None, seconds=5, what="the dialog to keep the take")
print(dialog.status_label.text(), flush=True)
kept = dialog.take()
print(kept is not None and kept.duration > 0.3, flush=True)
dialog.reject()
generate(1.0)  # composing goes on without a sound card
os._exit(0)
"""
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"), audible=True)


def run_probe(probe: str, bundle: Path, work: Path, name: str) -> list[str]:
    from tests.conftest import JACK_ENV, JACKD_COMMAND

    env = {**os.environ, **JACK_ENV, "JACK_DEFAULT_SERVER": f"cocompose-{name}-{os.getpid()}"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", probe, " ".join(JACKD_COMMAND), str(bundle), str(work)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return result.stdout.splitlines()


def test_a_sound_card_lost_while_the_song_plays_is_named_in_the_status_bar_and_composing_goes_on(
    jack_server, bundle, tmp_path
):
    lines = run_probe(PLAYING_PROBE, bundle, tmp_path, "app-loss")
    assert len(lines) == 5, lines
    assert lines[0] == "done"
    assert lines[1].startswith("the sound device 'system' stopped") and "disconnected?" in lines[1]
    assert lines[2] == "done"
    assert lines[3] == "1"  # the take generated after the loss is in the tree
    assert lines[4] == "failed"  # and play says why it cannot, instead of pretending


def test_a_recording_device_lost_mid_take_is_named_in_the_dialog_and_the_take_so_far_is_kept(
    jack_server, bundle, tmp_path
):
    lines = run_probe(RECORDING_PROBE, bundle, tmp_path, "app-input-loss")
    assert len(lines) == 3, lines
    assert "stopped" in lines[0] and "disconnected?" in lines[0]
    assert lines[1] == "True"
    assert lines[2] == "done"


# The app as main.py runs it, on a JACK server of its own that stops answering (SIGSTOP: as starved as a
# server can be) while the window is open; PortAudio then blocks for ever in every close.
# Both stalled-server probes start so, and leave the server's pid where the test can end it whatever happens.
STALL_SETUP = """
import os, shlex, signal, subprocess, sys
from pathlib import Path
jackd = subprocess.Popen(shlex.split(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
Path(sys.argv[3]).write_text(str(jackd.pid))
"""

STALLED_PROBE = (
    STALL_SETUP
    + """
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from ui.app import main

app = QApplication([])
QTimer.singleShot(500, lambda: os.kill(jackd.pid, signal.SIGSTOP))  # the player's stream is open by now
code = main(["--model", sys.argv[2], "--quit-after", "1500"])
print("main returned", code, flush=True)
sys.exit(code)
"""
)


# The same, with the server stalled before the app starts: PortAudio's initialisation blocks for good.
STALLED_BEFORE_PROBE = (
    STALL_SETUP
    + """
os.kill(jackd.pid, signal.SIGSTOP)
from cocompose.audio_io import audio_status
print(audio_status().summary(), flush=True)
from ui.app import main
code = main(["--model", sys.argv[2], "--quit-after", "500"])
print("main returned", code, flush=True)
sys.exit(code)
"""
)


def test_quitting_ends_the_app_even_when_the_jack_server_stalls(jack_server, bundle, tmp_path):
    out, err = run_stalled(STALLED_PROBE, bundle, tmp_path)
    assert "main returned 0" in out
    assert "the sound device did not let go" in err


def test_the_app_opens_without_sound_when_the_jack_server_is_stalled_before_it_starts(
    jack_server, bundle, tmp_path
):
    out, _ = run_stalled(STALLED_BEFORE_PROBE, bundle, tmp_path)
    assert "Audio unavailable: the sound system did not answer within" in out
    assert "main returned 0" in out


def run_stalled(probe: str, bundle: Path, tmp_path: Path) -> tuple[str, str]:
    """Run `probe` (after STALL_SETUP) and end its JACK server however it went; (stdout, stderr) of a probe
    that exited with 0."""
    from tests.conftest import JACK_ENV, JACKD_COMMAND

    env = {**os.environ, **JACK_ENV, "JACK_DEFAULT_SERVER": f"cocompose-stall-{os.getpid()}"}
    env.update(OMP_NUM_THREADS="1", COCOMPOSE_CONFIG_DIR=str(tmp_path / "config"))
    server = tmp_path / "jackd.pid"
    command = [sys.executable, "-c", probe, " ".join(JACKD_COMMAND), str(bundle), str(server)]
    try:
        result = run_or_show_stacks("the app", command, env, Path(__file__).resolve().parents[1], timeout=120)
    finally:
        if server.exists():  # the stopped server, which nobody else will ever end
            _end_stopped_server(int(server.read_text()))
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return result.stdout, result.stderr


def _end_stopped_server(pid: int) -> None:
    """Resume and terminate a SIGSTOPped jackd (so it removes its shared memory), killing it if it lingers."""
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGCONT)  # the TERM is handled once the server runs again
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie, which nobody may reap here, has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
