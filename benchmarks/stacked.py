"""Stacked seeds against separate runs, interleaved: training images per second per member.

    .venv/bin/python benchmarks/stacked.py                          # every model, 3 members, 3 rounds
    .venv/bin/python benchmarks/stacked.py --models C,A2 --members 5 --rounds 2 --json stacked.json

Each model trains on synthetic data of its real shape with its study's batch size and optimizer,
in worker processes (a fresh interpreter each, so thread pools never meet), by four methods:

- ``runs``: one single-threaded worker per core at once, each training one lone run (what
  ``cnnlab run --workers auto --stack never`` does with a study of small nets);
- ``run``: one lone run on every core (the executor's other runs x threads choice);
- ``stacked-runs``: one single-threaded worker per core at once, each training a stacked group
  of ``--members`` seeds (``--stack always``, the pool);
- ``stacked``: one stacked group on every core.

A method's figure is member-images trained per second, summed over its workers: a lone run
counts its images, a stacked group its images times its members; each worker scores its median
epoch (after an untimed warm-up epoch), each method its fastest of ``--rounds`` interleaved
rounds. The ratio sets the best stacked method against the best separate one: how much sooner
the seeds of a configuration are trained. Beside it, what the executor's cost rule
(``cnnlab.train.stacked.choose``) decides for the model on this device. Prints the CPU's
instruction set and matmul peaks first (``speed.py``'s probes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parents[1]

# name: (spec file, architecture, variant or None, images per epoch)
MODELS: dict[str, tuple[str, str, Optional[str], int]] = {
    "quickstart-small": ("quickstart.yaml", "small", None, 1_197),
    "quickstart-deeper": ("quickstart.yaml", "deeper", None, 1_197),
    "quickstart-deeper+BN": ("quickstart.yaml", "deeper", "batchnorm", 1_197),
    "C": ("study_c_mnist_sweep.yaml", "mnist_net", None, 4_000),
    "A2": ("study_a_regularization_cifar10.yaml", "A2", None, 1_000),
    "A3": ("study_a_regularization_cifar10.yaml", "A3", None, 1_000),
}
METHODS = ("runs", "run", "stacked-runs", "stacked")
MARK = "@@ "


# ---------------------------------------------------------------- the worker


def _worker() -> None:
    """Answer requests on stdin: train the model lone or stacked, reply the timed epochs' seconds."""
    import torch

    from cnnlab.data import ArrayDataset
    from cnnlab.models.build import build_resolved
    from cnnlab.models.variants import ResolvedLayer
    from cnnlab.spec.training import Train
    from cnnlab.train import Normalizer, TrainData, Trainer, configure_threads
    from cnnlab.train.stacked import StackedTrainer

    configure_threads(int(os.environ["STACKED_THREADS"]) or None)
    for line in sys.stdin:
        request = json.loads(line)
        shape = request["input_shape"]
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (request["images"], *shape), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (request["images"],), generator=generator)
        channels = shape[0]
        data = TrainData(ArrayDataset(images, labels), None, None,
                         Normalizer(torch.full((1, channels, 1, 1), 1 / 255.0), torch.zeros((1, channels, 1, 1))))
        resolved = [ResolvedLayer.from_dict(item) for item in request["layers"]]
        spec = Train.model_validate({"optimizer": request["optimizer"], "batch_size": request["batch_size"],
                                     "epochs": request["epochs"] + 1, "checkpoint_every": 10_000})
        members = request["members"]
        trainers = [Trainer(build_resolved(resolved, shape, 10, generator_seed=seed), data, spec, seed,
                            torch.device("cpu"), own_rng=members > 0) for seed in range(max(members, 1))]
        if members:
            history = StackedTrainer(trainers).fit()[0].history
        else:
            history = trainers[0].fit().history
        seconds = [epoch["seconds"] for epoch in history[1:]]  # the first epoch warms up
        sys.stdout.write(MARK + json.dumps({"seconds": seconds}) + "\n")
        sys.stdout.flush()


class Worker:
    def __init__(self, threads: int):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "STACKED_THREADS": str(threads)}
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def receive(self) -> list[float]:
        assert self.process.stdout
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])["seconds"]
        raise RuntimeError(f"a benchmark worker exited (code {self.process.wait()})")

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


# ---------------------------------------------------------------- the coordinator


def measure(request: dict[str, Any], method: str, members: int, cores: int) -> float:
    """Member-images per second of one round of ``method``."""
    concurrent = method.endswith("-runs") or method == "runs"
    workers = [Worker(1 if concurrent else cores) for _ in range(cores if concurrent else 1)]
    stack = members if method.startswith("stacked") else 0
    try:
        for worker in workers:
            worker.send({**request, "members": stack})
        # A stacked member's epoch seconds are its share of the group's time (the group's over its members).
        return sum(request["images"] / statistics.median(worker.receive()) for worker in workers)
    finally:
        for worker in workers:
            worker.close()


def run(models: list[str], members: int, rounds: int, epochs: int, log=print) -> dict[str, Any]:
    from cnnlab.train.stacked import choose, unstackable  # noqa: F401 - the rule the executor applies

    cores = len(os.sched_getaffinity(0))
    isa = speed.instruction_set()
    peaks = speed.matmul_peaks(cores, isa["bf16"] == "native")
    log(f"instruction set: {isa['isa']} (ONEDNN_MAX_CPU_ISA={isa['onednn_max_cpu_isa']}); {cores} cores; "
        f"oneDNN matmul peaks {peaks['fp32']:,.0f} GFLOP/s fp32, {peaks['bf16']:,.0f} bf16")
    results: dict[str, Any] = {}
    for name in models:
        request = {**speed.model_request(name, MODELS), "epochs": epochs}
        step = request["flops_per_image"] * request["batch_size"]
        choice = choose("auto", members, step, "cpu")
        timings: dict[str, list[float]] = {method: [] for method in METHODS}
        for number in range(rounds):
            order = METHODS[number % len(METHODS):] + METHODS[:number % len(METHODS)]
            for method in order:
                timings[method].append(measure(request, method, members, cores))
                log(f"  {name:22s} round {number + 1}/{rounds} {method:12s} {timings[method][-1]:9,.0f} member-img/s")
        best = {method: max(values) for method, values in timings.items()}
        separate, stacked = max(best["runs"], best["run"]), max(best["stacked-runs"], best["stacked"])
        results[name] = {"methods": {m: {"images_per_second": best[m], "rounds": timings[m]} for m in METHODS},
                         "ratio": stacked / separate, "step_mflop": step / 1e6,
                         "executor_stacks": choice.stack, "executor_reason": choice.reason}
        log(f"  {name}: stacked / separate {stacked / separate:.2f}x; the executor "
            f"{'stacks' if choice.stack else 'does not stack'} it ({choice.reason})")
    machine = speed.machine(cores, None)
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": {**machine, **isa},
            "peaks_gflops": peaks, "settings": {"members": members, "rounds": rounds, "epochs_per_round": epochs},
            "models": results}


def table(report: dict[str, Any]) -> str:
    header = ["model", "MFLOP a step", "runs", "run", "stacked-runs", "stacked", "stacked ÷ separate", "executor"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in report["models"].items():
        speeds = [f"{entry['methods'][m]['images_per_second']:,.0f}" for m in METHODS]
        decision = "stacks" if entry["executor_stacks"] else "separate"
        rows.append("| " + " | ".join([name, f"{entry['step_mflop']:,.0f}", *speeds, f"{entry['ratio']:.2f}×",
                                       decision]) + " |")
    m, s = report["machine"], report["settings"]
    rows.append("")
    rows.append(f"Member-images per second, measured {report['date']} on {m['cpu']} ({m['cores']} cores, {m['isa']}), "
                f"torch {m['torch']}; {s['members']} members; fastest of {s['rounds']} interleaved rounds of "
                f"{s['epochs_per_round']} epochs (median); synthetic data, each study's batch size and optimizer.")
    return "\n".join(rows)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring for the methods and the figure.")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated; default all: {','.join(MODELS)}")
    parser.add_argument("--members", type=int, default=3, help="seeds per stacked group (default 3, the quickstart's)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per round; the median counts (default 3)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker()
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model: {', '.join(unknown)}; models: {', '.join(MODELS)}")
    if args.members < 2:
        parser.error("--members: a stacked group has at least 2")
    started = time.perf_counter()
    report = run(models, args.members, args.rounds, args.epochs)
    print()
    print(table(report))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
