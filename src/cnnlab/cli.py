"""The command line: ``cnnlab run | ls | spec | summary | datasets``.

Errors from any stage are caught here, once, and printed as one paragraph with exit status 2
(no traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from cnnlab import __version__
from cnnlab.errors import CnnlabError

EXAMPLES = """\
examples:
  cnnlab run examples/quickstart.yaml            train every run, store it in runs/<study name>
  cnnlab run study.yaml --out runs/a --epochs 2  a quick trial with fewer epochs
  cnnlab ls runs/quickstart                      the results table, from the store
  cnnlab report runs/quickstart                  rebuild runs/quickstart/report.html from the store
  cnnlab compare runs/quickstart                 each variant against the baseline, with 95% intervals
  cnnlab spec study.yaml                         check a spec and list the runs it means
  cnnlab summary study.yaml --arch A1            Keras-style model summaries
  cnnlab explain runs/quickstart --what filters,maps,patches   interpretation figures of the best run
  cnnlab datasets                                datasets, their shapes and where they are cached
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, found {value}")
    return value


def _workers(text: str):
    return "auto" if text == "auto" else _positive(text)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    """The output folder (and which study in it) that the reading commands take."""
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    parser.add_argument("--study", help="which study, when the folder holds several")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Run, compare and explain convolutional-network image-classification studies "
        "declared in one YAML spec.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="train every run of a study and store the results",
        description="Train every run of a study (architectures x variants x sweep x repeats) and store each "
        "in DIR/cnnlab.sqlite with its weights. Rerunning skips finished runs and resumes an interrupted "
        "run from its last completed epoch; Ctrl-C stops cleanly.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 when every run finished, 1 when a run failed or diverged, 2 on bad input, "
        "130 when interrupted",
    )
    run.add_argument("spec", type=Path, help="the study file (YAML)")
    run.add_argument("--out", type=Path, help="output folder (default: runs/<study name>)")
    run.add_argument("--data-dir", type=Path, help="where dataset files are (default: $CNNLAB_DATA, then the user cache)")
    run.add_argument("--epochs", type=_positive, help="override train.epochs (changes the runs' identity)")
    run.add_argument("--precision", choices=["fp32", "bf16"],
                     help="override train.precision: bf16 autocast is about 1.5-2x faster on CPUs with bf16 "
                     "instructions (AVX512-BF16, AMX) and on recent GPUs (changes the runs' identity)")
    run.add_argument("--limit-train", type=_positive, metavar="N", help="train on a random N examples of the training split")
    run.add_argument("--threads", type=_positive, help="CPU threads per run (default: every core, split among workers; 1 for tiny models)")
    run.add_argument("--workers", type=_workers, default="auto", metavar="N|auto",
                     help="train N runs at once in worker processes, splitting the cores; auto (default): one "
                     "single-threaded run per core when the study would train for over a minute (small CNNs "
                     "cannot keep several cores busy), else one run at a time here")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (default): this machine; ray: one task per run on a Ray cluster")
    run.add_argument("--address", default="auto",
                     help="with --executor ray: the cluster's HOST:PORT, or 'auto' for the one started on this machine")
    run.add_argument("--gpus-per-run", type=float, metavar="N",
                     help="with --executor ray: GPUs each run asks for (default: 1 when train.device is cuda)")
    run.add_argument("--force", action="store_true", help="train finished runs again")
    run.add_argument("--quiet", action="store_true", help="no progress display; print only the results")
    run.add_argument("--no-report", action="store_true", help="do not write DIR/report.html at the end")

    ls = commands.add_parser("ls", help="print the results table of an output folder",
                             description="Print the results of the runs in an output folder, one row per "
                             "configuration (repeats averaged), best validation accuracy first.")
    _store_arguments(ls)
    ls.add_argument("--runs", action="store_true", help="one row per run instead of per configuration")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    compare = commands.add_parser(
        "compare", help="paired comparisons between configurations, with intervals and p-values",
        description="Compare each variant with the baseline variant of the same architecture (or the pairs "
        "you name), paired over seeds and folds: mean difference, 95% t-interval, paired t-test p-value and "
        "Holm-adjusted p. A difference whose interval includes zero is 'no clear difference'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cnnlab compare runs/study-a\n  cnnlab compare runs/study-a A3/none A3/batchnorm --metric val_loss",
    )
    _store_arguments(compare)
    compare.add_argument("configurations", nargs="*", metavar="A B",
                         help="pairs of configuration labels as 'cnnlab ls' shows them (compare B against A)")
    compare.add_argument("--metric", default=None, choices=["val_accuracy", "val_loss", "train_accuracy", "train_loss", "gap"],
                         help="what to compare (default: the spec's evaluate.select)")
    compare.add_argument("--json", action="store_true", help="machine-readable output")

    report = commands.add_parser(
        "report", help="write the study's report: one self-contained HTML file (or Markdown + PNGs)",
        description="Build the study report from the store alone (no retraining): header, results table, "
        "learning curves, model summaries, the best configuration's confusion matrix and examples. One HTML "
        "file with every figure embedded, readable offline and printable; --format md writes Markdown plus "
        "a folder of PNG figures for pasting into a lab report. 'cnnlab run' writes it at the end too.",
    )
    _store_arguments(report)
    report.add_argument("-o", "--output", type=Path, help="where to write (default: DIR/report.html or DIR/report.md)")
    report.add_argument("--format", choices=["html", "md"], default="html", help="html (default) or md")

    spec = commands.add_parser("spec", help="validate a study file and print its plan, or the spec's JSON schema",
                               description="Validate a study file and list the runs it expands to (architecture x "
                               "variant x sweep point x repeat x fold), with each run's id and seed.")
    spec.add_argument("file", type=Path, nargs="?", help="the study file (YAML)")
    spec.add_argument("--schema", action="store_true", help="print the JSON schema of the spec format")
    spec.add_argument("--json", action="store_true", help="print the plan as JSON")

    summary = commands.add_parser("summary", help="Keras-style model summaries of a study's architectures",
                                  description="Layer names, output shapes and parameter counts (total / trainable / "
                                  "non-trainable, batch-norm statistics counted as non-trainable as Keras does).")
    summary.add_argument("spec", type=Path, help="the study file (YAML)")
    summary.add_argument("--arch", action="append", help="only this architecture (repeatable)")
    summary.add_argument("--variant", action="append", help="only this variant (repeatable)")
    summary.add_argument("--data-dir", type=Path, help="where dataset files are (npz/folder datasets are read for their shape)")
    summary.add_argument("--json", action="store_true", help="machine-readable output")

    from cnnlab.explain.command import DESCRIPTION as EXPLAIN_DESCRIPTION, HELP as EXPLAIN_HELP, add_arguments

    explain = commands.add_parser("explain", help=EXPLAIN_HELP, description=EXPLAIN_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(explain)

    datasets = commands.add_parser("datasets", help="list datasets and where their files are",
                                   description="List the datasets cnnlab knows, their shapes and sizes, and whether "
                                   "their files are cached, embedded, or will be downloaded.")
    datasets.add_argument("--data-dir", type=Path, help="also look here")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from cnnlab import commands

    handler = getattr(commands, f"command_{args.command}")
    try:
        return handler(args)
    except CnnlabError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
