"""``cnnlab run SPEC``: train every run of a study, store it, print the results and write the report."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from cnnlab.cli.arguments import MAX_IMAGES, MAX_THREADS, at_most, fraction_of_gpus, positive, workers
from cnnlab.cli.spec import overrides_argument
from cnnlab.errors import CnnlabError

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
TERMINATED = 143  # 128 + SIGTERM: stopped as by Ctrl-C, but a scheduler or 'kill' asked


def add_run(commands: Any) -> argparse.ArgumentParser:
    """The ``run`` subcommand and its options."""
    run = commands.add_parser(
        "run", help="train every run of a study and store the results",
        description="Train every run of a study (architectures x variants x sweep x repeats) and store each "
        "in DIR/cnnlab.sqlite with its weights. Rerunning skips finished runs and resumes an interrupted "
        "run from its last completed epoch; Ctrl-C (or SIGTERM, as a scheduler or 'kill' sends) stops cleanly.",
        epilog="exit status: 0 when every run finished, 1 when a run failed or diverged, 2 on bad input "
        "(also when met inside a run: that run stays resumable), 130 when interrupted (Ctrl-C), 143 when stopped "
        "by SIGTERM",
    )
    run.add_argument("spec", type=Path, help="the study file (YAML)")
    overrides_argument(run)
    run.add_argument("--out", type=Path, help="output folder (default: runs/<study name>)")
    run.add_argument("--data-dir", type=Path, help="where dataset files are (default: $CNNLAB_DATA, then the user cache)")
    run.add_argument("--epochs", type=positive, help="train.epochs=N, and a variant's own epochs and the finals' evaluate.final_epochs too: a quick trial (changes the runs' identity; a sweep over train.epochs still wins)")
    run.add_argument("--precision", choices=["fp32", "bf16"],
                     help="the same as train.precision=fp32|bf16: bf16 autocast is about 1.5-2x faster on CPUs with bf16 "
                     "instructions (AVX512-BF16, AMX) and on recent GPUs (changes the runs' identity)")
    run.add_argument("--limit-train", type=at_most(MAX_IMAGES), metavar="N", help="train on a random N examples of the training split")
    run.add_argument("--threads", type=at_most(MAX_THREADS), help="CPU threads per run (default: every core, split among workers; 1 for tiny models)")
    run.add_argument("--workers", type=workers, default="auto", metavar="N|auto",
                     help="train N runs at once in worker processes, splitting the cores; auto (default): one "
                     "single-threaded run per core when the study would train for over about 10 s a core (small CNNs "
                     "cannot keep several cores busy), else one run at a time here")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (default): this machine; ray: one task per run on a Ray cluster")
    run.add_argument("--address", default="auto",
                     help="with --executor ray: the cluster's HOST:PORT, or 'auto' for the one started on this machine")
    run.add_argument("--gpus-per-run", type=fraction_of_gpus, metavar="N",
                     help="with --executor ray: GPUs each run asks for (default: 1 when train.device is cuda)")
    run.add_argument("--tensorboard", type=Path, metavar="DIR",
                     help="write TensorBoard logs to DIR while the study trains, one TensorBoard run per run (watch "
                     "with 'tensorboard --logdir DIR'); the spec's 'train: {log: [tensorboard]}' writes them to "
                     "OUT/tensorboard. Never changes the runs' identity: finished runs are not trained again. "
                     "Needs pip install 'cnnlab[logs]'")
    run.add_argument("--stack", choices=["auto", "always", "never"],
                     help="train the seeds (repeats) of a configuration as one stacked model, each seed still its "
                     "own run: auto (the spec's train.stack, by default auto) where that is faster (small nets on "
                     "a CPU, any net on a GPU), always, or never. Never changes the runs' identity")
    run.add_argument("--force", action="store_true", help="train finished runs again")
    run.add_argument("--quiet", action="store_true", help="no progress display; print only the results")
    run.add_argument("--no-report", action="store_true", help="do not write DIR/report.html at the end")
    run.set_defaults(handler=command_run)
    return run


def command_run(args: argparse.Namespace) -> int:
    """Train the study, print its results table; exit status 0, 1 (a run failed), 130 (interrupted)
    or 143 (SIGTERM, handled as Ctrl-C is: runs in flight marked interrupted, checkpoints kept)."""
    with _terminate_as_interrupt() as terminated:
        try:
            status = _command_run(args)
        except KeyboardInterrupt:
            if not terminated:
                raise  # Ctrl-C outside the study's execution: main says so
            print("\nterminated", file=sys.stderr)
            return TERMINATED
    return TERMINATED if terminated and status == INTERRUPTED else status


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM raises KeyboardInterrupt, so every executor stops as on Ctrl-C; yields a list that
    holds the signal once it came. Only in the main thread (Python's rule for handlers); the
    handler before is put back after, for callers that run ``main`` in-process."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: Any) -> None:
        if not received:  # once: a second SIGTERM must not cut short the stopping the first began
            received.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _command_run(args: argparse.Namespace) -> int:
    from cnnlab.analysis.tables import earlier_runs_note, format_results
    from cnnlab.api import run_study
    from cnnlab.execute.progress import make_progress
    from cnnlab.spec.overrides import parse_overrides

    overrides = parse_overrides(args.overrides)  # before anything: a bad one is one error, nothing written
    progress = make_progress(quiet=args.quiet)
    result = run_study(args.spec, args.out, data_dir=args.data_dir, epochs=args.epochs, limit_train=args.limit_train,
                       precision=args.precision, overrides=overrides, force=args.force, threads=args.threads, workers=args.workers,
                       executor=args.executor, address=args.address, gpus_per_run=args.gpus_per_run,
                       tensorboard=args.tensorboard, stack=args.stack, progress=progress)
    outcome = result.outcome
    print(format_results(result.rows, title=f"Results ({outcome.describe()}) in {result.folder}",
                         validated_on_test=any(config.validate_on_test for config in result.plan)))
    if result.earlier_runs:
        print("\n" + earlier_runs_note(result.earlier_runs, result.folder))
    if not outcome.interrupted and any(row.done for row in result.rows) and not args.no_report:
        _write_report_after_run(result, args)
    if outcome.interrupted:
        print(f"\nStopped. Finished runs are kept; resume with: cnnlab run {args.spec} --out {result.folder}"
              + "".join(f" {shlex.quote(word)}" for word in args.overrides)
              + (f" --epochs {args.epochs}" if args.epochs else "")
              + (f" --limit-train {args.limit_train}" if args.limit_train else "")
              + (f" --precision {args.precision}" if args.precision else "")
              + (f" --tensorboard {args.tensorboard}" if args.tensorboard else ""), file=sys.stderr)
        return INTERRUPTED
    if not outcome.ok:
        print(f"\nNot every run finished ({outcome.describe()}); see 'cnnlab ls {result.folder} --runs' for errors.",
              file=sys.stderr)
        _print_run_errors(result.folder, result.plan[0].study if result.plan else None)
        return 1
    return 0


def _print_run_errors(folder: Any, study: Optional[str]) -> None:
    """The distinct errors of the study's failed and diverged runs (shown even with --quiet)."""
    from cnnlab.store import Store

    with Store(folder, create=False) as store:
        errors = {}
        for run in store.runs(study):
            if run.status in ("failed", "diverged") and run.error:
                errors.setdefault(run.error, []).append(run.id)
    for error, ids in errors.items():
        print(f"  {len(ids)} run(s) {error}", file=sys.stderr)


def _write_report_after_run(result: Any, args: argparse.Namespace) -> None:
    """The report, at the end of a run; a problem with it never changes the run's exit status."""
    from cnnlab.report import write_report

    try:
        path = write_report(result.folder, study=result.plan[0].study if result.plan else None,
                            data_dir=getattr(args, "data_dir", None))
    except CnnlabError as error:
        print(f"warning: the report was not written: {error}", file=sys.stderr)
    else:
        print(f"Report: {path}")
