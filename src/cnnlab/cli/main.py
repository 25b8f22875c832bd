"""``main``: parse the command line, run the command, turn errors into one paragraph and an exit status.

Errors from any stage are caught here, once, and printed as one paragraph with exit status 2
(no traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from cnnlab.cli.completion import answer
from cnnlab.cli.parser import build_parser
from cnnlab.errors import CnnlabError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``cnnlab`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    answer(parser)  # the shell asking for completions: print them and exit
    args = _parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
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


def _parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """``parse_args``, and ``KEY=VALUE`` overrides after an option too (``cnnlab run s.yaml --quiet
    repeats=3``): argparse fills a positional list only from the words before the first option and
    would refuse the others as unrecognized."""
    args, extras = parser.parse_known_args(argv)
    words = [word for word in extras if not word.startswith("-")]  # one without '=': parse_overrides says what to write
    if extras and len(words) == len(extras) and isinstance(getattr(args, "overrides", None), list):
        args.overrides += words
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args
