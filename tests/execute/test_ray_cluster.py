"""A real Ray head on 127.0.0.1 in a private network namespace: the study completes though a
worker is killed mid-run, every run is done exactly once, and the metrics equal a local run."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnlab.api import open_store, run_study
from tests.execute.test_workers import SMALL_MODEL_STUDY

SCENARIO = Path(__file__).with_name("ray_scenario.py")


def _ray_available() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Ray is not installed: CI installs cnnlab[ray]")
        pytest.skip("Ray is not installed (pip install 'cnnlab[ray]')")


ROOT = getattr(os, "geteuid", lambda: -1)() == 0


@pytest.mark.skipif(shutil.which("unshare") is None or not ROOT,
                    reason="needs root and unshare for a private network namespace (unshare -n); CI runs as root")
def test_study_on_a_ray_cluster_survives_a_killed_worker(tmp_path):
    _ray_available()
    study = copy.deepcopy(SMALL_MODEL_STUDY)
    study["train"]["epochs"] = 10
    # Two seeds of one configuration: one stacked group, one Ray task; the killed task's members
    # both resume from their checkpoints (stored together, so at the same epoch) and stack again.
    study["variants"] = {"none": {}}
    study["repeats"] = 2
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(study))
    out = tmp_path / "ray"
    result = subprocess.run(["unshare", "-n", sys.executable, str(SCENARIO), str(spec), str(out)],
                            capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"Ray head on 127.0.0.1:{report['port']}; killed worker pid {report['killed']}; cnnlab said: "
          + report["stdout"].strip().splitlines()[0])
    assert report["killed"] is not None, report
    assert report["returncode"] == 0, report["stderr"]
    assert "resuming it from its last checkpoint" in report["stderr"]

    local = run_study(study, tmp_path / "local", threads=1)
    assert local.outcome.ok
    with open_store(out) as cluster, open_store(tmp_path / "local") as here:
        assert cluster.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = cluster.runs()
        assert [r["status"] for r in runs] == ["done"] * 2
        assert [r["attempts"] for r in runs] == [2, 2]  # the group's task retried once, no run recorded twice
        assert all(r["environment"]["stacked"] == 2 for r in runs)
        for run in runs:
            theirs = [(e["epoch"], e["train_loss"], e["val_loss"], e["val_accuracy"]) for e in cluster.epochs(run["id"])]
            ours = [(e["epoch"], e["train_loss"], e["val_loss"], e["val_accuracy"]) for e in here.epochs(run["id"])]
            assert theirs == ours and len(ours) == 10
            assert run["test_accuracy"] == here.run(run["id"])["test_accuracy"]
        assert not list(out.rglob(".tmp-cnnlab-*"))


def test_ray_with_an_unreachable_address_fails_at_once_naming_it(tmp_path, tiny_study):
    _ray_available()
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(tiny_study))
    result = subprocess.run([sys.executable, "-m", "cnnlab.cli", "run", str(spec), "--out", str(tmp_path / "o"),
                             "--executor", "ray", "--address", "127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
