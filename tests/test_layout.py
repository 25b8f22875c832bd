"""The layout rules of docs/architecture.md, checked: import layers, the linter, module size,
and every package presenting its public names one way."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "cnnlab"
BIN = Path(sys.executable).parent
MAX_LINES = 400


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; it comes with the test extra: pip install -e '.[test]'")
    return found


def test_every_room_imports_only_from_the_rooms_below_it():
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_linter_passes():
    result = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks", "tools"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(SOURCE)): count for path in SOURCE.rglob("*.py")
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by idea): {long}"


def _packages() -> list[str]:
    return [cnnlab.__name__] + [info.name for info in pkgutil.walk_packages(cnnlab.__path__, "cnnlab.")
                                if info.ispkg]


@pytest.mark.parametrize("name", _packages())
def test_every_package_lists_its_public_names_and_they_import(name):
    package = importlib.import_module(name)
    public = getattr(package, "__all__", None)
    assert isinstance(public, list) and public, f"{name}/__init__.py has no __all__"
    missing = [item for item in public if not hasattr(package, item)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
