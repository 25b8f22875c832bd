"""Helpers for the command-line tests: real ``cnnlab`` processes and study files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CNNLAB = [sys.executable, "-m", "cnnlab.cli"]


def cnnlab(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cnnlab ARGS`` in a child process and capture its output."""
    return subprocess.run([*CNNLAB, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def write_study(tmp_path: Path, study: dict) -> Path:
    """Write a study dict as ``tmp_path/study.yaml``."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path
