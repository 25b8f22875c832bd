"""Argument types and the arguments several commands share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Union


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, found {value}")
    return value


def at_most(limit: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``limit`` (the same bound the spec's field has)."""

    def bounded(text: str) -> int:
        value = positive(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"expected a number of at most {limit:,}, found {value:,}")
        return value

    return bounded


MAX_THREADS = 1024  # train.threads' bound in the spec
MAX_IMAGES = 10**9  # a split count's bound in the spec


def workers(text: str) -> Union[str, int]:
    """An argparse type: ``auto`` or a number of worker processes (1 to 1,024)."""
    return "auto" if text == "auto" else at_most(MAX_THREADS)(text)


def fraction_of_gpus(text: str) -> float:
    """An argparse type: GPUs a Ray task asks for, from 0 to 64 (fractions share a GPU)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GPUs, found {text!r}") from None
    if not 0.0 <= value <= 64.0:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a number of GPUs from 0 to 64, found {text}")
    return value


def store_arguments(parser: argparse.ArgumentParser) -> None:
    """The output folder (and which study in it) that the reading commands take."""
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    parser.add_argument("--study", help="which study, when the folder holds several")


def table_format_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format table|csv|md|latex|json`` and ``--json`` (the same as ``--format json``), one or the other."""
    from cnnlab.cli.tables import TABLE_FORMATS

    which = parser.add_mutually_exclusive_group()
    which.add_argument("--format", choices=TABLE_FORMATS, default="table",
                       help="table (default, for the terminal), csv (every field, for a spreadsheet), md (Markdown), "
                       "latex (a tabular, for a paper) or json")
    which.add_argument("--json", action="store_true", help="machine-readable output (the same as --format json)")


def table_format(args: argparse.Namespace) -> str:
    """The format a reading command prints in (``--json`` is ``--format json``)."""
    return "json" if args.json else args.format


def print_json(data: Any) -> None:
    """What every ``--json`` option prints: indented JSON, anything unusual as its string."""
    print(json.dumps(data, indent=2, default=str))
