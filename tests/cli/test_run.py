"""``cnnlab run`` and the store it leaves: real processes, the results table, Ctrl-C and resuming."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

from .conftest import CNNLAB, cnnlab, write_study


def test_run_then_ls_shows_every_configuration(tmp_path, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    result = cnnlab("run", spec, "--out", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Results (2 done)" in result.stdout
    listed = cnnlab("ls", tmp_path / "out")
    assert listed.returncode == 0
    for column in ("train acc %", "val acc %", "train loss", "val loss", "params", "time s", "small/none", "small/dropout"):
        assert column in listed.stdout
    rows = json.loads(cnnlab("ls", tmp_path / "out", "--json").stdout)
    assert {r["configuration"] for r in rows} == {"small/none", "small/dropout"}
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["params_total"] > 0 for r in rows)


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_rerun_resumes(tmp_path, tiny_study):
    tiny_study["train"]["epochs"] = 40
    tiny_study["variants"] = {"none": {}}
    spec = write_study(tmp_path, tiny_study)
    out = tmp_path / "out"
    process = subprocess.Popen([*CNNLAB, "run", str(spec), "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (out / "cnnlab.sqlite").exists():
                with sqlite3.connect(out / "cnnlab.sqlite") as db:
                    try:
                        done = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
                    except sqlite3.OperationalError:
                        done = 0
                if done >= 3:
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: cnnlab run {spec} --out {out}" in stderr
    with sqlite3.connect(out / "cnnlab.sqlite") as db:
        status, epochs_done = db.execute("SELECT status, epochs_done FROM runs").fetchone()
    assert status == "interrupted" and 0 < epochs_done < 40
    resumed = cnnlab("run", spec, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr
