"""``cnnlab ls DIR`` and ``cnnlab compare DIR``: a study's results, read from its store, printed as a
terminal table, CSV, Markdown, LaTeX or JSON (``cli/tables.py``)."""

from __future__ import annotations

import argparse
from typing import Any

import sys

from cnnlab.cli.arguments import print_json, store_arguments, table_format, table_format_arguments
from cnnlab.errors import SpecError, StoreError
from cnnlab.records import RunRecord


def add_ls(commands: Any) -> argparse.ArgumentParser:
    """The ``ls`` subcommand and its options."""
    ls = commands.add_parser("ls", help="print the results table of an output folder",
                             description="Print the results of the runs in an output folder, one row per "
                             "configuration (repeats averaged), best validation accuracy first.")
    store_arguments(ls)
    ls.add_argument("--runs", action="store_true", help="one row per run instead of per configuration")
    ls.add_argument("--all", action="store_true",
                    help="also list the runs of earlier versions of the study, which the table does not count")
    table_format_arguments(ls)
    ls.set_defaults(handler=command_ls)
    return ls


def add_compare(commands: Any) -> argparse.ArgumentParser:
    """The ``compare`` subcommand and its options."""
    compare = commands.add_parser(
        "compare", help="paired comparisons between configurations, with intervals and p-values",
        description="Compare each variant with the baseline variant of the same architecture (or the pairs "
        "you name), paired over seeds (t-test) or folds (corrected resampled t): mean difference, its 95% "
        "interval unadjusted and Holm-adjusted, p-value, Holm-adjusted p and the share of pairs the variant won. "
        "A difference whose Holm-adjusted p is 0.05 or more (its Holm-adjusted interval includes zero) is "
        "'no clear difference'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cnnlab compare runs/study-a\n  cnnlab compare runs/study-a A3/none A3/batchnorm --metric val_loss"
        "\n  cnnlab compare runs/study-a --format latex > comparisons.tex",
    )
    store_arguments(compare)
    compare.add_argument("configurations", nargs="*", metavar="A B",
                         help="pairs of configuration labels as 'cnnlab ls' shows them (compare B against A)")
    compare.add_argument("--metric", default=None, choices=["val_accuracy", "val_loss", "train_accuracy", "train_loss", "gap"],
                         help="what to compare (default: the spec's evaluate.select)")
    table_format_arguments(compare)
    compare.set_defaults(handler=command_compare)
    return compare


def command_ls(args: argparse.Namespace) -> int:
    """Print the study's results table (or its runs with ``--runs``)."""
    from cnnlab.analysis.tables import earlier_runs_note, format_results, result_rows
    from cnnlab.store import Store

    damaged: list[StoreError] = []
    unread_epochs: list[StoreError] = []

    def epochs(run_id: str) -> list[dict[str, Any]]:
        # One run's damaged epochs row costs that run's best train accuracy, not the whole table (issue 16).
        try:
            return store.epochs(run_id)
        except StoreError as error:
            unread_epochs.append(error)
            return []

    with Store(args.folder, create=False) as store:
        study = store.study(args.study)
        runs = store.runs(study.name, damaged=damaged)
        earlier = store.runs(study.name, earlier=True, damaged=damaged)
        rows = [] if args.runs else result_rows(runs, epochs)
    fmt = table_format(args)
    if args.runs:
        _print_runs(runs + (earlier if args.all else []), fmt, counted={run.id for run in runs})
    elif fmt == "json":
        print_json([row.to_dict() for row in rows])
    elif fmt != "table":
        _print_results(rows, fmt, study.name)
    else:
        overrides = " ".join(study.setting("overrides", default=[]))  # always texts (StudyRecord.setting)
        print(format_results(rows, title=f"Study '{study.name}' in {args.folder}: {len(runs)} runs"
                             + (f" (with {overrides})" if overrides else ""),
                             validated_on_test=study.setting("evaluate", "validate_on") == "test"))
        if earlier and args.all:
            print(f"\nRuns of earlier versions of the study, not counted above ({len(earlier)}):")
            _print_runs(earlier, "table", counted=set())
    if earlier and not args.all and fmt != "json":
        # Beside a table meant to be pasted or parsed, on stderr: the table stays clean.
        print(("\n" if fmt == "table" else "") + earlier_runs_note(len(earlier), args.folder),
              file=sys.stdout if fmt == "table" else sys.stderr)
    if damaged or unread_epochs:
        # What could be read is shown above; the status is still an error, so that a script
        # reading the table (or --json) learns that it lacks these runs (or their epochs).
        problems = []
        if damaged:
            problems.append(f"{len(damaged)} run{'s' if len(damaged) > 1 else ''} could not be read and "
                            f"{'are' if len(damaged) > 1 else 'is'} left out above: " + " | ".join(map(str, damaged)))
        if unread_epochs:
            many = len(unread_epochs) > 1
            problems.append(f"the epochs of {len(unread_epochs)} run{'s' if many else ''} could not be read, so "
                            f"{'their' if many else 'its'} best train accuracy is left out above: "
                            + " | ".join(map(str, unread_epochs)))
        raise StoreError("; ".join(problems))
    return 0


def _print_results(rows: list[Any], fmt: str, study: str) -> None:
    """The results table as CSV (every field of --json), Markdown or LaTeX (the terminal's cells)."""
    from cnnlab.analysis.tables import RESULT_COLUMNS, result_cells
    from cnnlab.cli.tables import render

    note = (f"Study {study}: one row per configuration, sorted by validation accuracy; accuracies in %, "
            "± the half-width of a 95% interval over repeats where there are several")
    # Each interval as two columns (ci.val_accuracy.low, .high), not one cell holding a pair.
    records = [{**row.to_dict(), "ci": {name: {"low": low, "high": high} for name, (low, high) in row.ci.items()}}
               for row in rows]
    print(render(fmt, records, RESULT_COLUMNS, [result_cells(row) for row in rows], note, "tab:results"), end="")


def _print_runs(runs: list[RunRecord], fmt: str, counted: set[str]) -> int:
    from cnnlab.cli.tables import render
    from cnnlab.spec.plan import configuration_label

    records = [{**{k: v for k, v in run.items() if k != "config"}, "counted": run.id in counted} for run in runs]
    if fmt == "json":
        print_json(records)
        return 0
    if fmt != "table":
        cells = [[run.id, run.status, configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase),
                  str(run.repeat), "" if run.fold is None else str(run.fold), str(run.epochs_done),
                  "" if run.val_accuracy is None else f"{100 * run.val_accuracy:.2f}"] for run in runs]
        print(render(fmt, records, ["run", "status", "configuration", "repeat", "fold", "epochs", "val acc %"], cells,
                     "One row per run", "tab:runs"), end="")
        return 0
    for run in runs:
        label = configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase)
        val = "" if run.val_accuracy is None else f" val_acc {100 * run.val_accuracy:.2f}%"
        print(f"{run.id}  {run.status:<11} {label} repeat {run.repeat}"
              + ("" if run.fold is None else f" fold {run.fold}")
              + f" epochs {run.epochs_done}{val}")
        if run.error:
            print(f"    {run.error}")
    return 0


def command_compare(args: argparse.Namespace) -> int:
    """Print paired comparisons: each variant against the baseline, or the pairs named."""
    from cnnlab.analysis.comparisons import compare, comparison_dict, format_comparisons, run_results
    from cnnlab.analysis.findings import comparison_finding
    from cnnlab.store import Store

    if len(args.configurations) % 2:
        raise SpecError(f"configurations come in pairs (A B: compare B against A); got {len(args.configurations)}")
    with Store(args.folder, create=False) as store:
        study = store.study(args.study)
        results = run_results(store, study.name)
    metric = args.metric or study.setting("evaluate", "select", default="val_accuracy")
    pairs = list(zip(args.configurations[::2], args.configurations[1::2]))
    if pairs:
        comparisons = compare([r for r in results if r.configuration in set(args.configurations)], metric, pairs=pairs)
        comparisons = [c for c in comparisons if (c.baseline, c.variant) in set(pairs)]
    else:
        comparisons = compare(results, metric, study.setting("evaluate", "baseline"))
    fmt = table_format(args)
    if fmt == "json":
        print_json([comparison_dict(c) for c in comparisons])
        return 0
    if fmt != "table":
        from cnnlab.analysis.comparisons import COMPARISON_COLUMNS, comparison_cells, comparison_note
        from cnnlab.cli.tables import render

        print(render(fmt, [comparison_dict(c) for c in comparisons], COMPARISON_COLUMNS,
                     [comparison_cells(c) for c in comparisons], comparison_note(comparisons, metric),
                     "tab:comparisons"), end="")
        return 0
    print(format_comparisons(comparisons, metric))
    if comparisons:
        print()
        for comparison in comparisons:
            print("- " + comparison_finding(comparison).text)
    return 0
