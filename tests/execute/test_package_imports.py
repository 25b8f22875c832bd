"""A worker process imports what training needs and nothing of the study's analysis."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_worker_imports_neither_the_conductor_nor_scipy_and_the_package_names_still_resolve():
    code = ("import sys, cnnlab.execute.local, cnnlab.execute.runner; "
            "print(sorted(m for m in ('scipy', 'cnnlab.analysis', 'cnnlab.execute.conductor') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # together 0.7 s of every worker's start

    import cnnlab.execute as execute
    from cnnlab.execute import conduct, train_run
    from cnnlab.execute.conductor import conduct as conduct_itself

    assert conduct is conduct_itself and callable(train_run)
    assert all(callable(getattr(execute, name)) for name in execute.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        execute.nothing_here  # noqa: B018
