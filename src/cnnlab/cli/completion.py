"""Shell completion of ``cnnlab``'s commands, options, run ids and study names (argcomplete), and
``cnnlab completion bash|zsh|fish``, which prints the shell code that turns it on.

The shell runs ``cnnlab`` with argcomplete's variables set (``_ARGCOMPLETE``, ``COMP_LINE``,
``COMP_POINT``); ``answer`` then prints the completions and exits before any command runs.
argcomplete is optional: without it every command works and only completion is missing.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Iterator

from cnnlab.errors import CnnlabError

SHELLS = ("bash", "zsh", "fish")
INSTALL = "pip install argcomplete"

ACTIVATION = """\
turn completion on (each line for your shell's start-up file):
  bash:  eval "$(cnnlab completion bash)"          in ~/.bashrc
  zsh:   eval "$(cnnlab completion zsh)"           in ~/.zshrc, after compinit
  fish:  cnnlab completion fish | source          in ~/.config/fish/config.fish
then TAB completes commands, options, run ids after --run (of the folder given before it) and
study names after --study. Needs the argcomplete package ({install})."""


def add_completion(commands: Any) -> argparse.ArgumentParser:
    """The ``completion`` subcommand."""
    completion = commands.add_parser(
        "completion", help="print the shell code that completes cnnlab's commands, options and run ids",
        description="Print the code that makes your shell complete cnnlab's commands, options, run ids and study "
        "names on TAB.", epilog=ACTIVATION.format(install=INSTALL), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to print the code for")
    completion.set_defaults(handler=command_completion)
    return completion


def command_completion(args: argparse.Namespace) -> int:
    """Print argcomplete's activation code for the shell (for ``eval`` or ``source``)."""
    argcomplete = _argcomplete()
    if argcomplete is None:
        raise CnnlabError(f"shell completion needs the argcomplete package, which is not installed: {INSTALL}, "
                          f"then run 'cnnlab completion {args.shell}' again")
    print(argcomplete.shellcode(["cnnlab"], shell=args.shell), end="")
    return 0


def answer(parser: argparse.ArgumentParser) -> None:
    """When the shell asks for completions, print them and exit; otherwise return at once (and
    without importing argcomplete: it costs every command's start-up time)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    argcomplete = _argcomplete()
    if argcomplete is not None:
        # Options once a '-' is typed: a bare TAB offers the commands, choices, ids and files alone.
        argcomplete.autocomplete(parser, always_complete_options=False)


def _argcomplete() -> Any:
    try:
        import argcomplete
    except ImportError:
        return None
    return argcomplete


def add_completers(parser: argparse.ArgumentParser) -> None:
    """Complete every command's ``--run`` with the run ids of its store folder and ``--study`` with
    the folder's studies (argcomplete reads an action's ``completer``; without it, it is unused)."""
    for action in _actions(parser):
        if "--run" in action.option_strings:
            action.completer = run_ids  # type: ignore[attr-defined]
        elif "--study" in action.option_strings:
            action.completer = study_names  # type: ignore[attr-defined]


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):  # a parser under each of its aliases
                yield from _actions(subparser)


def run_ids(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> dict[str, str]:
    """The ids of the runs in the store folder given on the command line (of ``--study`` if
    given), each with what it is, for shells that show descriptions."""
    from cnnlab.spec.plan import configuration_label

    runs = _read(parsed_args, lambda store: store.runs(getattr(parsed_args, "study", None)))
    return {run.id: f"{configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase)} "
                    f"repeat {run.repeat}" + ("" if run.fold is None else f" fold {run.fold}") + f", {run.status}"
            for run in runs or [] if run.id.startswith(prefix)}


def study_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The studies of the store folder given on the command line."""
    studies = _read(parsed_args, lambda store: store.studies())
    return [study.name for study in studies or [] if study.name.startswith(prefix)]


def _read(parsed_args: argparse.Namespace, what: Any) -> Any:
    """``what(store)`` of the command's store folder; None when there is none to read (no folder
    given yet, or not a store): a completion offers nothing rather than an error. Opened read-only:
    pressing TAB must not change the folder (not even migrate an older store, which an older cnnlab
    would then refuse)."""
    folder = getattr(parsed_args, "folder", None)
    if folder is None:
        return None
    from cnnlab.store import Store

    try:
        with Store(folder, create=False, read_only=True) as store:
            return what(store)
    except CnnlabError:
        return None
