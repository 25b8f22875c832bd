"""Runs in parallel worker processes against one run at a time, interleaved in one process.

    .venv/bin/python benchmarks/workers.py                    # 4 runs of a small net, 80 epochs, 2 rounds
    .venv/bin/python benchmarks/workers.py --epochs 20 --rounds 3 --json workers.json

A 4-run study of a small net on the embedded digits data (each run long enough, about 5 s on 2
cores, that starting two worker processes does not swamp what they save) is trained with
``--workers 1`` and ``--workers N`` in turn, ``--rounds`` times (this machine's speed drifts: only
interleaved timings compare); each setting's figure is its fastest round. Prints the instruction
set it ran on and the ratio; on 2 cores the executor's choice of two single-thread workers was
1.2x or more faster than one two-thread run when this moved here from the unit tests.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (benchmarks/ is not a package)

STUDY = {
    "name": "small-models",
    "dataset": {"name": "digits", "split": {"train": 1200, "val": 300, "test": 297}},
    "architectures": {"tiny": [{"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten",
                               {"dense": 10}]},
    "variants": {"none": {}, "dropout": {"dropout": 0.2}},
    "train": {"optimizer": "adam", "batch_size": 16, "epochs": 80},
    "repeats": 2,
}


def measure(epochs: int, rounds: int, workers: int) -> dict:
    from cnnlab.api import run_study

    study = copy.deepcopy(STUDY)
    study["train"]["epochs"] = epochs
    timings: dict[int, list[float]] = {1: [], workers: []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for count in (1, workers):
                started = time.perf_counter()
                result = run_study(study, Path(folder) / f"w{count}-{round_}", workers=count)
                if result.outcome.statuses != {"done": 4}:
                    raise SystemExit(f"the study did not finish: {result.outcome.statuses}")
                timings[count].append(time.perf_counter() - started)
    return {"seconds": {str(k): v for k, v in timings.items()}, "ratio": min(timings[1]) / min(timings[workers])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    isa = speed.instruction_set()
    print(f"instruction set: {isa['isa']} (ONEDNN_MAX_CPU_ISA={isa['onednn_max_cpu_isa']}); {os.cpu_count()} cores")
    figures = measure(args.epochs, args.rounds, args.workers)
    best = {count: min(seconds) for count, seconds in figures["seconds"].items()}
    print(f"4-run study, {args.epochs} epochs: --workers 1 {best['1']:.1f} s, --workers {args.workers} "
          f"{best[str(args.workers)]:.1f} s; ratio {figures['ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"machine": isa, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
