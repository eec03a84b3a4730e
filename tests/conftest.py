"""Shared test set-up: headless Qt, and a virtual sound card (JACK's dummy driver) for the audio tests.

See ../shared/notes/HEADLESS-TESTING.md for why each step is done the way it is.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# Qt reads this when the QApplication is created; with no display and no platform set it aborts the
# whole process (exit 134). None of the imports above loads Qt, and no test module has been imported
# yet. An explicit choice (e.g. QT_QPA_PLATFORM=xcb under xvfb-run) still wins.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

JACK_SAMPLE_RATE = 48_000
# A paced virtual card, 2 in / 2 out; --no-realtime because CI containers may not grant RT priority.
JACKD_COMMAND = shlex.split(f"jackd --no-realtime -d dummy -r {JACK_SAMPLE_RATE} -p 256 -C 2 -P 2")
JACK_ENV = {
    # Never let a JACK client (PortAudio included) spawn a server of its own, and don't ask D-Bus for
    # the sound card: there is none, the dummy driver needs none.
    "JACK_NO_START_SERVER": "1",
    "JACK_NO_AUDIO_RESERVATION": "1",
    # A server name of our own, so the tests never play into a developer's running JACK session.
    "JACK_DEFAULT_SERVER": f"cocompose-tests-{os.getpid()}",
}


@dataclass(frozen=True)
class JackServer:
    server_name: str
    sample_rate: int
    device: int  # PortAudio's index of the JACK device
    device_name: str


def require_or_skip(message: str) -> None:
    """CI must have every test tool installed, so a missing one fails there; locally it only skips."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """A running JACK dummy sound card (2 in / 2 out at 48 kHz), with PortAudio re-initialised to see it."""
    for tool in ("jackd", "jack_wait", "jack_lsp", "jack_connect"):
        if shutil.which(tool) is None:
            require_or_skip(f"{tool} not found: the audio tests need JACK (apt-get install jackd2)")
    from cocompose.audio_io import AudioUnavailable, _sounddevice, list_devices

    try:
        sd = _sounddevice()
    except AudioUnavailable as exc:
        require_or_skip(f"the audio tests need PortAudio: {exc}")

    with pytest.MonkeyPatch.context() as env, tempfile.TemporaryFile("w+") as log:
        for name, value in JACK_ENV.items():
            env.setenv(name, value)
        jackd = subprocess.Popen(
            JACKD_COMMAND,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            waited = subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True, text=True)
            if waited.returncode != 0 or jackd.poll() is not None:
                log.seek(0)
                pytest.fail(
                    f"jackd did not start:\n{waited.stdout}{waited.stderr}{log.read()}", pytrace=False
                )
            # PortAudio lists devices only when it initialises, and it may have done so before jackd ran.
            sd._terminate()
            sd._initialize()
            jack_devices = [d for d in list_devices() if d.host_api.startswith("JACK")]
            if not jack_devices:
                pytest.fail("jackd is running but PortAudio lists no JACK device", pytrace=False)
            yield JackServer(
                server_name=JACK_ENV["JACK_DEFAULT_SERVER"],
                sample_rate=JACK_SAMPLE_RATE,
                device=jack_devices[0].index,
                device_name=jack_devices[0].name,
            )
        finally:
            # PortAudio must let go of the server before it stops; otherwise the process aborts at exit
            # (SIGABRT, exit 134) after every test has passed.
            sd._terminate()
            jackd.terminate()
            try:
                jackd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                jackd.kill()
                jackd.wait()
            # Bring PortAudio back (now without JACK) for anything that still uses it in this session.
            sd._initialize()


@pytest.fixture
def one_thread():
    """Run torch on one thread: small models are no faster on two (per-op overhead dominates), and two
    threads fight whatever else shares the machine's two cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
