"""Run inside a private network namespace (``unshare -n``): start a Ray head on 127.0.0.1, run a
study through ``--executor ray``, SIGKILL the worker of one run in the middle, and always stop
the head. Prints one JSON line with what happened. Used by test_ray_cluster.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

spec, out = sys.argv[1], Path(sys.argv[2])
bin_dir = Path(sys.executable).parent
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay short
env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
report = {"port": port, "killed": None}
try:
    subprocess.run([str(bin_dir / "ray"), "start", "--head", "--num-cpus", "2", "--port", str(port), "--temp-dir", temp,
                    "--include-dashboard", "false", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"],
                   check=True, env=env, capture_output=True, timeout=120)
    run = subprocess.Popen([sys.executable, "-m", "cnnlab.cli", "run", spec, "--out", str(out), "--executor", "ray",
                            "--address", f"127.0.0.1:{port}", "--threads", "1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while report["killed"] is None and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with sqlite3.connect(out / "cnnlab.sqlite") as db:
                epochs = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        except sqlite3.Error:
            continue
        if epochs < 3:
            continue
        for pid in os.listdir("/proc"):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if pid.isdigit() and title.startswith(b"ray::cnnlab_run"):
                os.kill(int(pid), signal.SIGKILL)
                report["killed"] = int(pid)
                break
    stdout, stderr = run.communicate(timeout=300)
    report.update(returncode=run.returncode, stdout=stdout[-3000:], stderr=stderr[-3000:])
finally:
    subprocess.run([str(bin_dir / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(temp, ignore_errors=True)
print(json.dumps(report))
