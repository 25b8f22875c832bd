"""The command line: ``cnnlab run | ls | compare | report | spec | summary | explain | datasets``.

The top layer: it imports the library, nothing in the library imports it. One module per
command group holds its subcommands' arguments, help and handlers (``run``, ``results``,
``report``, ``spec``, ``explain``); ``parser`` puts them together and ``main`` runs one.
"""

from __future__ import annotations

from cnnlab.cli.main import main
from cnnlab.cli.parser import build_parser

__all__ = ["build_parser", "main"]
