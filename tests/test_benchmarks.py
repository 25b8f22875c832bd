"""The speed benchmarks run and report what they claim (tiny settings; the figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from cnnlab.train.device import bf16_is_native

ROOT = Path(__file__).resolve().parents[1]


def test_speed_runner_interleaves_methods_and_writes_json(tmp_path):
    out = tmp_path / "speed.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--models", "C", "--methods", "cnnlab,cnnlab-runs,pytorch",
         "--rounds", "2", "--epochs", "1", "--scale", "0.02", "--json", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    entry = report["models"]["C"]
    for method in ("cnnlab", "cnnlab-runs", "pytorch"):
        assert len(entry[method]["rounds"]) == 2
        assert entry[method]["images_per_second"] == max(entry[method]["rounds"]) > 0
        assert entry[method]["peak_rss_mb"] > 100  # torch alone is more than that
    assert entry["flops_per_image"] == 3 * 2 * (4 * 28 * 28 * 25 + 8 * 14 * 14 * 100 + 16 * 7 * 7 * 200 + 784 * 64 + 640)
    assert report["peaks_gflops"]["fp32"] > 0 and report["peaks_gflops"]["bf16"] > 0
    assert "| C |" in result.stdout and "fp32 ÷ PyTorch" in result.stdout
    # The speed benchmark decides from the CPU it runs on: where bf16 is emulated its bf16 peak probe
    # shrinks (a 2048-square bf16 matmul took minutes there) and it says so.
    assert "instruction set:" in result.stdout
    emulated = not bf16_is_native(torch.device("cpu"))
    assert report["machine"]["bf16"] == ("emulated" if emulated else "native")
    assert ("bf16 is emulated here" in result.stdout) == emulated


def test_speed_runner_refuses_unknown_models_with_the_known_ones(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--models", "A9"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown model or method: A9" in result.stderr and "A3+BN" in result.stderr


def test_study_a_benchmark_trains_the_example_study_on_cifar_shaped_data(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import study_a
    finally:
        sys.path.pop(0)
    spec = yaml.safe_load(study_a.study_spec(tmp_path / "data.npz", tmp_path).read_text())
    assert spec["dataset"]["name"] == "npz" and spec["evaluate"]["retrain_on"] == "none"
    models = study_a.keras_models()
    assert len(models) == 12 and {m["name"].split("/")[0] for m in models} == {"A1", "A2", "A3"}


def test_workers_benchmark_times_one_and_two_workers_interleaved_and_reports_the_ratio(tmp_path):
    # The speed claim itself (two single-thread workers beat one two-thread run on 2 cores) is the
    # benchmark's to measure; here it only runs, tiny, and reports what it claims.
    out = tmp_path / "workers.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "workers.py"), "--epochs", "1", "--rounds", "1",
                             "--workers", "2", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert len(report["seconds"]["1"]) == len(report["seconds"]["2"]) == 1 and report["ratio"] > 0
    assert "instruction set:" in result.stdout and "ratio" in result.stdout


def test_stacked_benchmark_measures_every_method_and_says_what_the_executor_chooses(tmp_path):
    out = tmp_path / "stacked.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stacked.py"), "--models", "quickstart-small", "--rounds", "1",
         "--epochs", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    entry = report["models"]["quickstart-small"]
    speeds = {method: entry["methods"][method]["images_per_second"] for method in ("runs", "run", "stacked-runs", "stacked")}
    assert all(value > 0 for value in speeds.values())
    assert entry["ratio"] == max(speeds["stacked-runs"], speeds["stacked"]) / max(speeds["runs"], speeds["run"])
    assert entry["executor_stacks"] is True  # a digits-sized step: the cost rule stacks it on a CPU
    assert "instruction set:" in result.stdout and "| quickstart-small |" in result.stdout
