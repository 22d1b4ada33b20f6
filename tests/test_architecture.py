"""The package's shape: the layer contracts in pyproject.toml hold, and they name every part of the package.

The contracts are checked by import-linter (`lint-imports`), which reads the imports itself (grimp), module
level and inside functions alike. The second test keeps the contracts from going stale: a new top-level
module or subpackage that no layer names would escape them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import simcse_lab

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(simcse_lab.__file__).resolve().parent


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_layer_and_cycle_contracts_are_kept():
    beside_python = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # an unactivated venv
    command = shutil.which("lint-imports", path=beside_python) or pytest.skip("import-linter is not installed (the dev extra)")
    done = subprocess.run([command, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(PACKAGE.parent), "PATH": str(Path(sys.executable).parent)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout, done.stdout[-2000:]


def test_every_top_level_module_and_subpackage_is_in_a_layer():
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    named = {part.strip() for layer in layers for part in layer.split("|")}
    parts = {f"simcse_lab.{p.stem}" for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    parts |= {f"simcse_lab.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    parts.discard("simcse_lab.default_model")  # the wheel's copy of data/models/bert-mini-mlm, not code
    assert parts - named == set(), f"not in any layer of pyproject.toml's import-linter contract: {sorted(parts - named)}"
    assert named - parts == set(), f"layers name modules that do not exist: {sorted(named - parts)}"
