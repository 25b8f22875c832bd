"""The ``cnnlab`` argument parser: the top-level options and each command's subparser, in help order."""

from __future__ import annotations

import argparse

from cnnlab.version import __version__
from cnnlab.cli.completion import add_completers, add_completion
from cnnlab.cli.explain import add_explain
from cnnlab.cli.export import add_export
from cnnlab.cli.logs import add_export_logs
from cnnlab.cli.predict import add_predict
from cnnlab.cli.prune import add_prune
from cnnlab.cli.report import add_report
from cnnlab.cli.results import add_compare, add_ls
from cnnlab.cli.run import add_run
from cnnlab.cli.spec import add_datasets, add_spec, add_summary

EXAMPLES = """\
examples:
  cnnlab run examples/quickstart.yaml            train every run, store it in runs/<study name>
  cnnlab run study.yaml --out runs/a --epochs 2  a quick trial with fewer epochs
  cnnlab run study.yaml train.optimizer.lr=0.01 repeats=5   settings over the file's (as editing it would)
  cnnlab ls runs/quickstart                      the results table, from the store
  cnnlab report runs/quickstart                  rebuild runs/quickstart/report.html from the store
  cnnlab export-logs runs/quickstart --tensorboard runs/tb   the runs as TensorBoard files (or --mlflow URI)
  cnnlab compare runs/quickstart                 each variant against the baseline, with 95% intervals
  cnnlab spec study.yaml                         check a spec and list the runs it means
  cnnlab summary study.yaml --arch A1            Keras-style model summaries
  cnnlab explain runs/quickstart --what filters,maps,patches   interpretation figures of the best run
  cnnlab export runs/quickstart                  the best run as ONNX (normalization inside), to use without cnnlab
  cnnlab predict runs/quickstart a.png b.jpg     the best run's top classes of image files (or --folder, --npz)
  cnnlab datasets                                datasets, their shapes and where they are cached
  cnnlab prune runs/quickstart                   remove runs of earlier versions (ls --all lists them)
  eval "$(cnnlab completion bash)"               TAB-complete commands, options and run ids (bash, zsh, fish)
"""

# Each adds one subcommand (with ``handler`` set to its function); this order is the help's order.
COMMANDS = (add_run, add_ls, add_compare, add_report, add_spec, add_summary, add_explain, add_export, add_export_logs,
            add_predict, add_datasets, add_prune, add_completion)

DEBUG_HELP = "show tracebacks for errors"


def build_parser() -> argparse.ArgumentParser:
    """The whole ``cnnlab`` parser; ``args.handler`` of a parsed command line is the command's function."""
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Run, compare and explain convolutional-network image-classification studies "
        "declared in one YAML spec.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        subparser = add(commands)
        # Users type --debug after the command too. SUPPRESS as the default: a subparser's default
        # would overwrite a --debug given before the command; SUPPRESS as the help keeps each
        # command's --help as it was (the top-level help lists --debug).
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_completers(parser)
    return parser
