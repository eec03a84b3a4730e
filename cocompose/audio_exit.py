"""Quitting never hangs on a sound card.

sounddevice shuts PortAudio down in an atexit handler, and PortAudio's JACK host blocks there for as long
as its server is stalled or gone. By then every project is closed, every worker thread has been joined
(Python joins them before it runs atexit handlers) and every file is written, so the only thing left to
wait for is the sound card: give it a few seconds, then end the process with the code it was ending with.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

# PortAudio lets go of a healthy device in milliseconds; a stalled JACK server can keep it for minutes.
AUDIO_EXIT_GRACE_SECONDS = 5.0


def exit_without_waiting_on_audio(exit_code: int, grace_s: float = AUDIO_EXIT_GRACE_SECONDS) -> None:
    """From now on, an exit whose atexit handlers take over `grace_s` seconds ends with `exit_code` then.

    Call it after the audio library was imported (handlers run last in, first out, so this one runs
    before sounddevice's and arms the watchdog in time) and just before returning `exit_code`.
    """
    atexit.register(_arm_watchdog, exit_code, grace_s)


def _arm_watchdog(exit_code: int, grace_s: float) -> None:
    def end_now() -> None:
        time.sleep(grace_s)
        print(
            f"cocompose: the sound device did not let go within {grace_s:g} s; quitting without it",
            file=sys.stderr,
            flush=True,
        )
        os._exit(exit_code)

    # A daemon thread: when the handlers finish in time, the process ends normally and this never fires.
    threading.Thread(target=end_now, name="cocompose-exit-watchdog", daemon=True).start()
