"""``cnnlab prune DIR``: remove the runs of earlier versions of a study, which no table counts."""

from __future__ import annotations

import argparse
from typing import Any

from cnnlab.cli.arguments import store_arguments


def add_prune(commands: Any) -> argparse.ArgumentParser:
    """The ``prune`` subcommand and its options."""
    prune = commands.add_parser(
        "prune", help="remove the runs of earlier versions of a study (kept, uncounted, until then)",
        description="Tables, comparisons, the selection and the report count the runs of a study's latest "
        "'cnnlab run' only. Runs of earlier versions (a quick --epochs 1 trial, an architecture edited since) stay "
        "in the store until this removes them, with their epochs and files. 'cnnlab ls DIR --all' lists them first.",
    )
    store_arguments(prune)
    prune.set_defaults(handler=command_prune)
    return prune


def command_prune(args: argparse.Namespace) -> int:
    """Remove the study's uncounted runs and say which."""
    from cnnlab.store import Store
    from cnnlab.store.lock import StoreLock

    with Store(args.folder) as store:
        study = store.study(args.study)
        with StoreLock(args.folder, study.name):
            earlier = store.runs(study.name, earlier=True)
            store.remove_runs([run.id for run in earlier])
    if not earlier:
        print(f"Nothing to remove: every run of study '{study.name}' in {args.folder} is counted.")
        return 0
    print(f"Removed {len(earlier)} run(s) of earlier versions of study '{study.name}' from {args.folder}:")
    for run in earlier:
        print(f"  {run.id}  {run.architecture}/{run.variant} repeat {run.repeat}  {run.status}")
    return 0
