"""The import rules of ``pyproject.toml`` (``[tool.importlinter]``) hold, and really bite: the
same contract run over a copy of the code with one upward import added fails, naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("qor", "flows", "storage", "integrity", "catalog_sync", "elibrary")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_code_keeps_its_layers() -> None:
    run = lint_imports(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    store = tmp_path / "storage" / "store.py"
    store.write_text(store.read_text("utf-8") + "\nimport flows.digitise  # upward\n", "utf-8")

    run = lint_imports(tmp_path)

    assert run.returncode != 0
    assert "storage is not allowed to import flows" in run.stdout
    assert "storage.store -> flows.digitise" in run.stdout
