"""Where the Jukebox reference fixture lives, for tests that compare against the reference code.

The fixture sits in ../shared/jukebox-reference/fixture beside the checkout. Acceptance also runs the
same tests on a second fixture built with other sizes and seeds: point COCOMPOSE_JUKEBOX_FIXTURE at it.
Every size must therefore come from the fixture's hparams.json, never from this file.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("COCOMPOSE_JUKEBOX_REFERENCE", REPO_ROOT.parent / "shared" / "jukebox-reference")
)
FIXTURE_DIR = Path(os.environ.get("COCOMPOSE_JUKEBOX_FIXTURE", REFERENCE_DIR / "fixture"))
IDS_DIR = REFERENCE_DIR / "ids"


def require_fixture() -> Path:
    """The fixture folder; skips locally when it is absent, but fails under CI, where it must exist."""
    if (FIXTURE_DIR / "hparams.json").exists():
        return FIXTURE_DIR
    message = f"Jukebox reference fixture not found at {FIXTURE_DIR}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@cache
def hparams() -> dict:
    return json.loads((require_fixture() / "hparams.json").read_text())


def resolved_hps(name: str) -> dict:
    return hparams()["resolved_hps"][name]


def checkpoint_path(name: str) -> Path:
    return require_fixture() / hparams()["checkpoint_paths"][name]


@cache
def arrays(file_stem: str) -> dict[str, np.ndarray]:
    with np.load(require_fixture() / f"{file_stem}.npz") as data:
        return {key: data[key] for key in data.files}
