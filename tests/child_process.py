"""Run a Python child process for a test, and when it hangs, say where."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest


def run_or_show_stacks(
    what: str, command: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `command` (`what`, in a failure's message) to its end; one still running after `timeout` s
    fails the test with every thread's stack (the fault handler, turned on here, prints them on SIGABRT)
    instead of a bare timeout."""
    child = subprocess.Popen(command, cwd=cwd, env={**env, "PYTHONFAULTHANDLER": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        out, err = child.communicate()
        pytest.fail(f"{what} did not exit within {timeout:g} s:\n{out}{err[-8000:]}", pytrace=False)
    return subprocess.CompletedProcess(command, child.returncode, out, err)
