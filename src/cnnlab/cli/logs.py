"""``cnnlab export-logs DIR --tensorboard OUT | --mlflow URI``: a store's runs, for TensorBoard or MLflow."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from cnnlab.cli.arguments import store_arguments


HELP = "write a store's runs as TensorBoard files or into an MLflow tracking store"
DESCRIPTION = (
    "Write the runs of a finished (or stopped) study from its store, without retraining: one TensorBoard run, or "
    "one MLflow run, per cnnlab run, named <configuration>_repeat<r>[_fold<f>]_<run id>. Each epoch's losses, "
    "accuracies, penalty, learning rate and images per second (step: the epoch's number, 1 for the first); the "
    "final metrics as final/<name> beside the run's settings (TensorBoard's HPARAMS tab; MLflow's parameters: the "
    "configuration flattened, train.optimizer.lr, layers.0.conv.filters...). MLflow also gets tags (architecture, "
    "variant, phase, run_id, status, repeat, fold) and each run's weights and predictions files, in an experiment "
    "named after the study. Runs still queued or training are left out. To log while a study trains, set "
    "'train: {log: [tensorboard]}' in the spec (or [tensorboard, histograms] for each epoch's weight histograms) "
    "or pass 'cnnlab run --tensorboard DIR'."
)
EPILOG = """\
examples:
  cnnlab export-logs runs/quickstart --tensorboard runs/quickstart/tensorboard
  tensorboard --logdir runs/quickstart/tensorboard
  cnnlab export-logs runs/quickstart --mlflow file:./mlruns     exporting again adds only what is new
  MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file:./mlruns

MLflow 3 keeps its file store (file:PATH) in maintenance mode: the export allows it for itself, and MLflow's
own tools read it with MLFLOW_ALLOW_FILE_STORE=true. A tracking server (http://HOST:5000) needs nothing more;
database stores (sqlite:///mlflow.db) and 'mlflow ui' need the full mlflow package.

needs: pip install 'cnnlab[logs]' (tensorboard and mlflow-skinny)
exit status: 0 when written, 2 on bad input (no store, a destination that cannot be written, a package missing)
"""


def add_export_logs(commands: Any) -> argparse.ArgumentParser:
    """The ``export-logs`` subcommand and its options."""
    export = commands.add_parser("export-logs", help=HELP, description=textwrap.fill(DESCRIPTION, 100),
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    store_arguments(export)
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--tensorboard", type=Path, metavar="OUT",
                       help="write TensorBoard event files under this folder (a run's earlier files there replaced)")
    where.add_argument("--mlflow", metavar="URI",
                       help="an MLflow tracking URI: file:PATH for a local store, or a tracking server's http(s) URL")
    export.set_defaults(handler=command_export_logs)
    return export


def command_export_logs(args: argparse.Namespace) -> int:
    """Export the store in ``args.folder``; say how many runs went where and how to look at them."""
    from cnnlab.execute.export_logs import export_mlflow, export_tensorboard

    if args.tensorboard is not None:
        done = export_tensorboard(args.folder, args.tensorboard, args.study)
        view = f"tensorboard --logdir {args.tensorboard}"
        print(f"Wrote {done.written} run(s) of study '{done.study}' as TensorBoard files in {done.where}")
    else:
        done = export_mlflow(args.folder, args.mlflow, args.study)
        # MLflow 3 reads a file store only when allowed; its UI comes with the full mlflow package.
        allow = "MLFLOW_ALLOW_FILE_STORE=true " if done.file_store else ""
        view = f"{allow}mlflow ui --backend-store-uri {args.mlflow} (pip install mlflow for the UI)"
        already = f" ({done.already} already there)" if done.already else ""
        print(f"Exported {done.written} run(s) of study '{done.study}' to MLflow experiment '{done.experiment}' "
              f"at {done.where}{already}")
    if done.left_out:
        print(f"Left out {done.left_out} run(s) still queued or training.")
    print(f"Look at them with: {view}")
    return 0
