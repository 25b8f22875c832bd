"""Study A (USER_STUDIES.md) end to end: cnnlab's wall time and peak memory beside Keras'.

    .venv/bin/python benchmarks/study_a.py --keras-python /path/to/tf-venv/bin/python
    .venv/bin/python benchmarks/study_a.py --epochs 3 --precision fp32,bf16 --json study_a.json

cnnlab runs ``examples/study_a_regularization_cifar10.yaml`` (3 architectures x 4 variants,
SGD, batch 64) with ``cnnlab run``, as a user would: planning, training with validation every
epoch, the test pass, the store, checkpoints and the HTML report, on synthetic CIFAR-10-shaped
data (an npz of 25,000 training and 10,000 test images; the split is the study's 25,000 train /
5,000 val / 5,000 test). The final retrain is switched off so both sides train the same 12 runs.
Peak memory is the largest sum of resident memory over cnnlab's process and its workers,
sampled every 0.2 s.

Keras trains the same 12 models with ``model.fit(validation_data=...)`` for ``--keras-epochs``
timed epochs each (after one warm-up epoch), and its study time is extrapolated: the median
epoch times the study's epochs, plus the test evaluation, per model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402 - the sibling benchmark: Keras model building, interpreters, data

SPEC = speed.EXAMPLES / "study_a_regularization_cifar10.yaml"
TRAIN, TEST = 25_000, 10_000


def write_data(folder: Path) -> Path:
    import numpy as np

    x_train, y_train = speed._synthetic(TRAIN, [32, 32, 3])
    x_test, y_test = speed._synthetic(TEST, [32, 32, 3])
    path = folder / "cifar_shaped.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def study_spec(data: Path, folder: Path) -> Path:
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    spec["dataset"] = {"name": "npz", "path": str(data), "split": spec["dataset"]["split"]}
    spec["evaluate"]["retrain_on"] = "none"
    path = folder / "study_a.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class TreeMemory:
    """The peak, over time, of the summed resident memory of a process and its descendants."""

    def __init__(self, pid: int):
        self.pid, self.peak_mb, self.done = pid, 0.0, False
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _tree(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            pids += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return pids

    def _watch(self) -> None:
        while not self.done:
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak_mb = max(self.peak_mb, total / 1024)
            time.sleep(0.2)

    def stop(self) -> float:
        self.done = True
        self.thread.join()
        return self.peak_mb


def run_cnnlab(spec: Path, out: Path, epochs: int, precision: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "cnnlab", "run", str(spec), "--out", str(out), "--epochs", str(epochs),
               "--precision", precision, "--quiet"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = TreeMemory(process.pid)
    output, _ = process.communicate()
    seconds = time.perf_counter() - started
    peak = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"cnnlab run failed ({process.returncode}):\n{output[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak, "epochs": epochs}


def keras_models() -> list[dict[str, Any]]:
    """The 12 (architecture, variant) models of study A as resolved layer lists."""
    from cnnlab.api import load_spec
    from cnnlab.models import build_model
    from cnnlab.spec.plan import expand

    study = load_spec(str(SPEC))[0]
    optimizer = study.train.optimizer.model_dump(mode="json")
    models = []
    # The plan resolves what a variant says per architecture (study A places dropout per architecture).
    for config in expand(study):
        built = build_model(config.layer_list(), (3, 32, 32), 10, config.variant_spec)
        models.append({"name": f"{config.architecture}/{config.variant}", "layers": [r.to_dict() for r in built.resolved],
                       "optimizer": optimizer})
    return models


def keras_worker(request: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    x, y = speed._synthetic(TRAIN, [32, 32, 3])
    xt, yt = speed._synthetic(TEST, [32, 32, 3])
    x = x.astype("float32") / 255.0
    xt = xt.astype("float32") / 255.0
    val, test = (xt[:5000], yt[:5000]), (xt[5000:], yt[5000:])
    results = {}
    for entry in request["models"]:
        model = speed.keras_model(keras, entry["layers"], [3, 32, 32], entry["optimizer"])
        model.fit(x[:2000], y[:2000], batch_size=64, epochs=1, verbose=0)  # warm-up: graph tracing
        times: list[float] = []
        model.fit(x, y, batch_size=64, epochs=request["timed_epochs"], validation_data=val, verbose=0,
                  callbacks=[speed.keras_epoch_timer(keras, times)])
        started = time.perf_counter()
        model.evaluate(*test, batch_size=1024, verbose=0)
        results[entry["name"]] = {"epoch_seconds": times, "test_seconds": time.perf_counter() - started}
        print(f"  keras {entry['name']:14s} {statistics.median(times):6.1f} s/epoch", file=sys.stderr, flush=True)
    return results


def run_keras(python: str, epochs: int, timed_epochs: int) -> dict[str, Any]:
    request = {"models": keras_models(), "timed_epochs": timed_epochs}
    process = subprocess.run([python, __file__, "--keras-worker"], input=json.dumps(request), text=True,
                             stdout=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in process.stdout.splitlines() if line.startswith(speed.MARK)]
    if process.returncode != 0 or not lines:
        raise SystemExit(f"the Keras worker failed ({process.returncode})")
    models = json.loads(lines[-1][len(speed.MARK):])
    total = sum(statistics.median(m["epoch_seconds"]) * epochs + m["test_seconds"] for m in models.values())
    return {"seconds": total, "models": models, "extrapolated_from_epochs": timed_epochs, "epochs": epochs}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (study A: 10)")
    parser.add_argument("--precision", default="fp32,bf16", help="cnnlab precisions to time (default fp32,bf16)")
    parser.add_argument("--keras-python", help="a Python interpreter with tensorflow (default: this one, if it has it)")
    parser.add_argument("--keras-epochs", type=int, default=2, help="timed Keras epochs per model (default 2)")
    parser.add_argument("--no-keras", action="store_true", help="time cnnlab only")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keras-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keras_worker:
        result = keras_worker(json.loads(sys.stdin.read()))
        print(speed.MARK + json.dumps(result), flush=True)
        return 0
    report: dict[str, Any] = {"epochs": args.epochs, "cnnlab": {}}
    with tempfile.TemporaryDirectory(prefix="cnnlab-study-a-") as tmp:
        folder = Path(tmp)
        spec = study_spec(write_data(folder), folder)
        for precision in [p.strip() for p in args.precision.split(",") if p.strip()]:
            result = run_cnnlab(spec, folder / f"out-{precision}", args.epochs, precision)
            report["cnnlab"][precision] = result
            print(f"cnnlab {precision}: {result['seconds'] / 60:.1f} min, peak RSS {result['peak_rss_mb']:,.0f} MB",
                  flush=True)
    python = None if args.no_keras else speed.keras_python(args.keras_python)
    if python:
        report["keras"] = run_keras(python, args.epochs, args.keras_epochs)
        keras_seconds = report["keras"]["seconds"]
        print(f"Keras (extrapolated from {args.keras_epochs} epochs per model): {keras_seconds / 60:.1f} min")
        for precision, result in report["cnnlab"].items():
            print(f"cnnlab {precision} takes {result['seconds'] / keras_seconds:.2f} of Keras' time "
                  f"({keras_seconds / result['seconds']:.2f}x faster)")
    elif not args.no_keras:
        print("tensorflow is not importable here (pass --keras-python): Keras is left out", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
