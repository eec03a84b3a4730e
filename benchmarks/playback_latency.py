"""How soon the musician hears something after pressing Space, and whether switching siblings is silent.

    python benchmarks/playback_latency.py [--trials 30] [--json out.json]

Runs the real main window (offscreen Qt) on the default model with a JACK dummy sound card of its own
(jackd2 needed; nothing plays on a real card), makes a song with two takes, and measures:
  space_to_sound_ms   from the Space key event to the first audio callback that sends the take's sound
                      (the player's position starts moving), with the stream already open (warm) and
                      after the stream was released by a long pause (cold: the stream starts again);
  switch_gap_frames   frames of silence the card receives when the number key 2 swaps in the sibling
                      while playing (0: the switch happens between two callbacks).
The JACK period (256 frames at 48 kHz, 5.3 ms) bounds how soon a callback can run. Medians and worst.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JACKD = "jackd --no-realtime -d dummy -r 48000 -p 256 -C 2 -P 2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # A JACK server of our own: never a musician's running session; clients must not start another.
    os.environ.update(JACK_DEFAULT_SERVER=f"cocompose-bench-{os.getpid()}", JACK_NO_START_SERVER="1",
                      JACK_NO_AUDIO_RESERVATION="1")  # fmt: skip
    jackd = subprocess.Popen(shlex.split(JACKD), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
        result = measure(args.trials)
    finally:
        # PortAudio cannot shut down once its server is gone: leave without its atexit handler.
        print(json.dumps(result, indent=2), flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        jackd.terminate()
        os._exit(0)


def measure(trials: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from cocompose import playback
    from cocompose.audio_io import audio_status
    from cocompose.models import DEFAULT_MODEL_DIR
    from ui.main_window import MainWindow

    app = QApplication([sys.argv[0]])

    def wait_until(condition, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("playback_latency: gave up waiting")
            app.processEvents()
            time.sleep(0.0005)

    with tempfile.TemporaryDirectory() as work:
        window = MainWindow(audio_status(), state_dir=Path(work) / "config", model=DEFAULT_MODEL_DIR,
                            offer_reopen=False)  # fmt: skip
        window.show()
        wait_until(lambda: window._model is not None)
        dialog = window.new_song_dialog()
        dialog.path.setText(str(Path(work) / "bench.cocompose"))
        dialog.artist.setText(window._model.artists[-1])
        dialog.genre.setText(window._model.genres[-1])
        dialog.accept()
        wait_until(lambda: len(window._mirror) == 1)
        window.generate_panel.branches.setValue(2)
        window.generate_panel.seconds.setValue(10.0)
        window.generate_panel.generate_button.click()
        wait_until(lambda: len(window._mirror.children(1)) == 2 and all(
            n.state.value == "done" for n in window._mirror.children(1)))  # fmt: skip
        first, second = (n.id for n in window._mirror.children(1))
        window.select_take(first)
        wait_until(lambda: window.playing_take() == first)
        player = window.playback.player

        def press_space_and_time() -> float:
            start_pos = player.position
            t0 = time.perf_counter()
            QTest.keyClick(window, Qt.Key.Key_Space)
            while player.position == start_pos:
                time.sleep(0.0002)  # no event processing needed: the audio thread moves the playhead
            return (time.perf_counter() - t0) * 1000

        warm, cold = [], []
        for i in range(trials):
            player.seek(1.0 + (i % 5))
            warm.append(press_space_and_time())
            time.sleep(0.05)
            QTest.keyClick(window, Qt.Key.Key_Space)  # pause
            app.processEvents()
        saved = playback.IDLE_RELEASE_SECONDS
        playback.IDLE_RELEASE_SECONDS = 0.05  # a long pause, shortened: the stream is released
        try:
            for _ in range(max(3, trials // 5)):
                time.sleep(0.4)
                cold.append(press_space_and_time())
                time.sleep(0.05)
                QTest.keyClick(window, Qt.Key.Key_Space)
                app.processEvents()
        finally:
            playback.IDLE_RELEASE_SECONDS = saved

        # The switch: what the player sends around the swap, block by block, from its own callback.
        sent: list[np.ndarray] = []
        fill = player._fill

        def recording_fill(outdata, frames):
            fill(outdata, frames)
            sent.append(outdata[:, 0].copy())

        player._fill = recording_fill
        player.seek(2.0)
        QTest.keyClick(window, Qt.Key.Key_Space)
        wait_until(lambda: len(sent) > 20)
        QTest.keyClick(window, Qt.Key.Key_2)
        wait_until(lambda: window.playing_take() == second)
        wait_until(lambda: len(sent) > 60)
        QTest.keyClick(window, Qt.Key.Key_Space)
        player._fill = fill
        stream = np.concatenate(sent)
        nonzero = np.flatnonzero(stream)
        inner = stream[nonzero[0] : nonzero[-1] + 1]
        silent_runs = longest_zero_run(inner)
        window.close()

    def summary(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 2), "max": round(max(values), 2), "n": len(values)}

    return {
        "space_to_sound_ms_warm": summary(warm),
        "space_to_sound_ms_cold": summary(cold),
        "switch_gap_frames": int(silent_runs),
        "jack_period_ms": round(256 / 48_000 * 1000, 2),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }


def longest_zero_run(samples) -> int:
    import numpy as np

    zero = np.concatenate([[0], (samples == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(zero))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


if __name__ == "__main__":
    sys.exit(main())
