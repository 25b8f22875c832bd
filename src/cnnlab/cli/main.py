"""``main``: parse the command line, run the command, turn errors into one paragraph and an exit status.

Errors from any stage are caught here, once, and printed as one paragraph with exit status 2
(no traceback unless ``--debug``).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from cnnlab.cli.parser import build_parser
from cnnlab.errors import CnnlabError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``cnnlab`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
