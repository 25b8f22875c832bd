"""Report build time and size for a 12-run study (budget: under 20 s and 10 MB on a 2-core CPU).

Trains a 3 variants x 4 sweep points study on the embedded 8x8 digits (no download) in a
temporary folder, then builds its HTML report in a fresh Python process (imports included, as
'cnnlab report' would) and once more in this process (warm), and the Markdown twin.

    .venv/bin/python benchmarks/report_build.py [--epochs 5] [--keep DIR]

Prints the machine, the versions, and the numbers; exits 1 when over budget.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS, BUDGET_BYTES = 20.0, 10 * 1024 * 1024

STUDY = {
    "name": "report-benchmark-12",
    "seed": 0,
    "dataset": {"name": "digits", "split": {"train": "rest", "val": 300, "test": 300}},
    "architectures": {
        "net": [
            {"conv": {"filters": 8, "kernel": 3, "padding": "same"}},
            {"maxpool": 2},
            {"conv": {"filters": 16, "kernel": 3, "padding": "same"}},
            "flatten",
            {"dense": 32},
            {"dense": 10},
        ],
    },
    "variants": {"none": {}, "l2": {"l2": 1.0e-4}, "dropout": {"dropout": 0.25}},
    "sweep": {"conv.kernel": [3, 5], "conv.stride": [1, 2]},  # 3 variants x 4 points = 12 runs
    "train": {"optimizer": {"name": "adam", "lr": 0.003}, "batch_size": 32, "epochs": 5},
}

COLD_BUILD = "import sys, time; t = time.perf_counter(); from cnnlab.report import write_report; " \
             "write_report(sys.argv[1], sys.argv[2]); print(time.perf_counter() - t)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="train into (and keep) this folder instead of a temporary one")
    args = parser.parse_args()

    import cnnlab
    from cnnlab.report import write_report
    from cnnlab.train import environment, select_device

    env = environment(select_device("cpu"))
    print(f"machine: {env['processor']}, {env['cores']} cores, {env['platform']}")
    print(f"versions: python {env['python']}, torch {env['torch']}, numpy {env['numpy']}, cnnlab {cnnlab.__version__}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary) / "study"
        started = time.perf_counter()
        result = cnnlab.run_study(STUDY, folder, epochs=args.epochs)
        print(f"trained: {result.outcome.describe()} ({len(result.plan)} runs, {args.epochs} epochs) "
              f"in {time.perf_counter() - started:.1f} s")

        output = folder / "report.html"
        cold = float(subprocess.run([sys.executable, "-c", COLD_BUILD, str(folder), str(output)], check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1])
        size = output.stat().st_size
        started = time.perf_counter()
        write_report(folder, folder / "report-warm.html")
        warm = time.perf_counter() - started
        started = time.perf_counter()
        markdown = write_report(folder, format="md")
        markdown_seconds = time.perf_counter() - started
        figures = sum(p.stat().st_size for p in (folder / "report_figures").glob("*.png"))

        print(f"html report: {cold:.1f} s in a fresh process (imports included), {warm:.1f} s warm; "
              f"{size / 1e6:.2f} MB ({output})")
        print(f"markdown report: {markdown_seconds:.1f} s; {(markdown.stat().st_size + figures) / 1e6:.2f} MB with figures")
        within = cold < BUDGET_SECONDS and size < BUDGET_BYTES
        print(f"budget (< {BUDGET_SECONDS:.0f} s, < {BUDGET_BYTES / 1024 / 1024:.0f} MB): {'met' if within else 'EXCEEDED'}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
