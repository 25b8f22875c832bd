"""Argument types and the arguments several commands share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Union


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, found {value}")
    return value


def workers(text: str) -> Union[str, int]:
    """An argparse type: ``auto`` or a positive number of worker processes."""
    return "auto" if text == "auto" else positive(text)


def store_arguments(parser: argparse.ArgumentParser) -> None:
    """The output folder (and which study in it) that the reading commands take."""
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    parser.add_argument("--study", help="which study, when the folder holds several")


def print_json(data: Any) -> None:
    """What every ``--json`` option prints: indented JSON, anything unusual as its string."""
    print(json.dumps(data, indent=2, default=str))
