"""Take the README's screenshots by using the app as a musician would, on the embedded default model.

A song of three picked takes with an artist change is composed in the real main window; the last take
plays (waveform, playhead and markers drawn) when the window is shot. Then a riff is recorded in the
record dialog from a JACK dummy sound card, the window's player sending a short melody into the card's
input, and the dialog is shot while it records. Run it through scripts/screenshot.sh, which provides
Xvfb, Qt's xcb platform and a JACK dummy server of its own (needs xvfb and jackd2).

    python scripts/screenshots.py OUT_DIR
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loop_back() -> None:
    """Wire the app's first output port into its first input port (the riff is played, not faked)."""
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True).stdout.split()
    ours = [p for p in ports if not p.startswith("system:")]
    out = next(p for p in ours if ":out_" in p)
    into = next(p for p in ours if ":in_" in p)
    subprocess.run(["jack_connect", out, into], check=True, capture_output=True)


def melody(rate: int) -> object:
    """A short plucked phrase (what a musician might hum into the microphone)."""
    import numpy as np

    notes = (220.0, 261.6, 329.6, 293.7, 261.6, 196.0)
    beat = round(0.3 * rate)
    t = np.arange(beat) / rate
    pluck = np.exp(-6 * t)
    phrase = [0.4 * pluck * np.sin(2 * np.pi * f * t) for f in notes]
    return np.concatenate(phrase).astype(np.float32)


def main(out_dir: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from cocompose.audio_io import audio_status
    from cocompose.models import DEFAULT_MODEL_DIR
    from cocompose.playback import AudioSource
    from ui.main_window import MainWindow
    from ui.record_dialog import RecordDialog

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Cocompose")

    def wait_until(condition, seconds: float = 120.0, what: str = "it") -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"screenshots: gave up waiting for {what}")
            app.processEvents()
            time.sleep(0.01)

    def settle(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    finished: list = []

    def generate(button, count: int, seconds: float) -> list[int]:
        finished.clear()
        window.generate_panel.branches.setValue(count)
        window.generate_panel.seconds.setValue(seconds)
        button.click()
        wait_until(lambda: finished, what="a generation")
        if finished[0].state != "done":
            raise RuntimeError(
                f"screenshots: the generation ended {finished[0].state}: {finished[0].message}"
            )
        return list(finished[0].node_ids)

    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "config"
        window = MainWindow(audio_status(), state_dir=config, model=DEFAULT_MODEL_DIR, offer_reopen=False)
        window.resize(1280, 860)
        window.show()
        wait_until(lambda: window._model is not None, what="the default model")

        def generation_ended(event) -> None:
            if event.kind == "generate" and event.state in ("done", "failed", "cancelled"):
                finished.append(event)

        window.bridge.jobEvent.connect(generation_ended)
        dialog = window.new_song_dialog()
        dialog.path.setText(str(Path(work) / "Night Drive.cocompose"))
        dialog.artist.setText("neon_sirens")
        dialog.genre.setText("techno")
        dialog.seconds.setValue(30)
        dialog.accept()
        wait_until(lambda: len(window._mirror) == 1, what="the new song")

        # Three rounds of branches; the musician keeps one each time, and the third round changes voice.
        panel = window.generate_panel
        takes = generate(panel.generate_button, 4, 4.0)
        window.select_take(takes[2])
        window.session.pick(takes[2])
        takes = generate(panel.generate_button, 3, 4.0)
        window.select_take(takes[0])
        window.session.pick(takes[0])
        # A duet: the third round is sung by another artist in another genre (the Conditioning panel's).
        settle(0.5)
        window.conditioning_panel.artist.setText("the_glass_harps")
        window.conditioning_panel.genre.setText("waltz")
        takes = generate(panel.generate_button, 3, 4.0)
        window.select_take(takes[1])
        window.session.pick(takes[1])
        settle(1.0)
        wait_until(lambda: window.playing_take() == takes[1], what="the take to load")
        window.play_action.trigger()
        settle(2.5)
        window.play_action.trigger()  # paused: the playhead stays where it was when shot
        settle(0.5)
        save(window.grab(), out_dir / "main-window.png")

        # The record dialog, with a riff just recorded through the card's loopback.
        window.record_action.trigger()
        record = window.findChild(RecordDialog, "recordDialog")
        wait_until(lambda: record is not None and record.isVisible(), what="the record dialog")
        loop_back()
        record.beats.setValue(0)
        record.record_button.click()
        player = window.playback.player
        phrase = melody(player.sample_rate)
        player.load(AudioSource(player.sample_rate, phrase))
        player.play()
        settle(1.2)  # shot mid-riff: the meter shows the level
        save(record.grab(), out_dir / "record-dialog.png")
        wait_until(lambda: player.status().state.value == "stopped", what="the riff to be played")
        record.stop_button.click()
        record.reject()
        window.close()
        settle(0.5)
    return 0


def save(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise OSError(f"screenshots: could not write {path}")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
