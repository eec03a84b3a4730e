"""The layering (ui -> cocompose -> engine; no Qt below ui, no torch in ui) and lint hold; the checks bite.

The contracts live in pyproject.toml under [tool.importlinter]; these tests run import-linter on the real
tree, then on a copy with one forbidden import planted, to prove a violation is really reported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ui", "cocompose", "engine")
# Run through `python -c` so the working directory comes first on sys.path: in a copied tree that makes
# the copy, not the editable install of the real tree, the code that import-linter analyses.
LINT_IMPORTS = [
    sys.executable,
    "-c",
    "from importlinter.cli import lint_imports_command; lint_imports_command()",
    "--no-cache",
    "--no-logo",
]


def contract_names() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]


def lint_imports(root: Path) -> tuple[int, dict[str, str], str]:
    """Run import-linter in `root`: (exit code, {contract name: "KEPT" or "BROKEN"}, full report)."""
    result = subprocess.run(LINT_IMPORTS, cwd=root, capture_output=True, text=True, timeout=120)
    report = result.stdout + result.stderr
    verdicts = dict(re.findall(r"^(.+?) (KEPT|BROKEN)$", report, flags=re.MULTILINE))
    return result.returncode, verdicts, report


def test_every_layering_contract_is_kept():
    code, verdicts, report = lint_imports(REPO_ROOT)
    assert len(contract_names()) >= 3, "the import-linter contracts are missing from pyproject.toml"
    assert verdicts == dict.fromkeys(contract_names(), "KEPT"), report
    assert code == 0, report


@pytest.mark.parametrize(
    ("package", "planted_import", "reported_as"),
    [
        ("ui", "import torch", "ui._planted -> torch"),
        ("ui", "import engine", "ui._planted -> engine"),
        ("engine", "from PySide6 import QtWidgets", "engine._planted -> PySide6"),
        ("cocompose", "import pyqtgraph", "cocompose._planted -> pyqtgraph"),
        ("cocompose", "import ui.main_window", "cocompose._planted -> ui.main_window"),
    ],
)
def test_a_planted_forbidden_import_is_reported(tmp_path, package, planted_import, reported_as):
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / package / "_planted.py").write_text(f"{planted_import}\n")

    code, verdicts, report = lint_imports(tmp_path)
    assert code != 0, report
    assert "BROKEN" in verdicts.values(), report
    assert reported_as in report


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache"],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_finds_nothing_to_fix():
    result = ruff("check", "cocompose", "engine", "ui", "tests", "main.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_uses_the_project_config_and_reports_a_real_problem():
    # Checked as if it were a file in ui/, so the project's pyproject.toml config applies.
    result = ruff("check", "--stdin-filename", "ui/_planted.py", "-", stdin="import os\n")
    assert result.returncode == 1
    assert "F401" in result.stdout
