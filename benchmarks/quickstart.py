"""The quickstart end to end (``cnnlab run examples/quickstart.yaml``: 24 runs and the report),
this checkout beside an earlier commit, interleaved in one run.

    .venv/bin/python benchmarks/quickstart.py                       # against e83ed5d, 3 rounds
    .venv/bin/python benchmarks/quickstart.py --against HEAD~5 --rounds 5 --json quickstart.json

The earlier commit is checked out into a temporary git worktree and run from its own source
(``PYTHONPATH``) with this interpreter and its packages, each commit on its own quickstart spec,
into a fresh output folder each time. The two take turns, ``--rounds`` times, starting with a
different one each round (this machine's speed drifts: only interleaved timings compare); each
reports its median wall time, and the ratio is this checkout's median over the earlier one's.
Prints the CPU's instruction set and core count first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "e83ed5d"  # the commit the 40 s bar was set beside (67 s there, on an AVX2-only 2-core CPU)


def time_quickstart(source: Path, out: Path) -> float:
    """Seconds of one ``cnnlab run`` of the quickstart of the checkout at ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cnnlab", "run", str(source / "examples" / "quickstart.yaml"),
                             "--out", str(out), "--quiet"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or not (out / "report.html").exists():
        raise SystemExit(f"the quickstart of {source} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return seconds


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=BASELINE, help=f"the earlier commit (default {BASELINE})")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    isa = speed.instruction_set()
    cores = len(os.sched_getaffinity(0))
    print(f"instruction set: {isa['isa']} (ONEDNN_MAX_CPU_ISA={isa['onednn_max_cpu_isa']}); {cores} cores")
    scratch = Path(tempfile.mkdtemp(prefix="cnnlab-quickstart-"))
    earlier = scratch / "earlier"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(earlier), args.against],
                   check=True, capture_output=True)
    sources = {"this": ROOT, args.against: earlier}
    timings: dict[str, list[float]] = {name: [] for name in sources}
    try:
        names = list(sources)
        for number in range(args.rounds):
            for name in names[number % 2:] + names[:number % 2]:
                timings[name].append(time_quickstart(sources[name], scratch / f"out-{name}-{number}"))
                print(f"  round {number + 1}/{args.rounds} {name:10s} {timings[name][-1]:6.1f} s", flush=True)
                shutil.rmtree(scratch / f"out-{name}-{number}", ignore_errors=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(earlier)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratio = medians["this"] / medians[args.against]
    print(f"\nquickstart end to end, median of {args.rounds}: this checkout {medians['this']:.1f} s, "
          f"{args.against} {medians[args.against]:.1f} s: {ratio:.2f} of its time")
    if args.json:
        args.json.write_text(json.dumps({"machine": {**speed.machine(cores, None), **isa}, "timings": timings,
                                         "medians": medians, "ratio": ratio}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
