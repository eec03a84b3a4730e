"""Atomic model writes clean up after writes that were killed, and never touch a live one."""

from __future__ import annotations

import os
import time

from engine.checkpoint import STALE_AFTER_S, atomic_write


def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "vqvae.safetensors"
    stale, live = tmp_path / ".vqvae.safetensors.k1.tmp", tmp_path / ".vqvae.safetensors.k2.tmp"
    for path in (stale, live):
        path.write_bytes(b"partial")
    past = time.time() - STALE_AFTER_S - 5
    os.utime(stale, (past, past))
    atomic_write(target, lambda tmp: tmp.write_bytes(b"weights"))
    assert target.read_bytes() == b"weights"
    assert not stale.exists() and live.exists()
