"""What each CLI command does (argument parsing lives in cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cnnlab.errors import CnnlabError, SpecError


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def command_run(args: argparse.Namespace) -> int:
    from cnnlab.analysis.tables import format_results
    from cnnlab.api import run_study
    from cnnlab.execute.progress import make_progress

    progress = make_progress(quiet=args.quiet)
    result = run_study(args.spec, args.out, data_dir=args.data_dir, epochs=args.epochs, limit_train=args.limit_train,
                       precision=args.precision, force=args.force, threads=args.threads, workers=args.workers,
                       executor=args.executor, address=args.address, gpus_per_run=args.gpus_per_run, progress=progress)
    outcome = result.outcome
    print(format_results(result.rows, title=f"Results ({outcome.describe()}) in {result.folder}"))
    if not outcome.interrupted and any(row.done for row in result.rows) and not args.no_report:
        _write_report_after_run(result, args)
    if outcome.interrupted:
        print(f"\nStopped. Finished runs are kept; resume with: cnnlab run {args.spec} --out {result.folder}"
              + (f" --epochs {args.epochs}" if args.epochs else "")
              + (f" --limit-train {args.limit_train}" if args.limit_train else "")
              + (f" --precision {args.precision}" if args.precision else ""), file=sys.stderr)
        return 130
    if not outcome.ok:
        print(f"\nNot every run finished ({outcome.describe()}); see 'cnnlab ls {result.folder} --runs' for errors.",
              file=sys.stderr)
        _print_run_errors(result.folder)
        return 1
    return 0


def _print_run_errors(folder: Any) -> None:
    """The distinct errors of failed and diverged runs (shown even with --quiet)."""
    from cnnlab.store import Store

    with Store(folder, create=False) as store:
        errors = {}
        for run in store.runs():
            if run["status"] in ("failed", "diverged") and run["error"]:
                errors.setdefault(run["error"], []).append(run["id"])
    for error, ids in errors.items():
        print(f"  {len(ids)} run(s) {error}", file=sys.stderr)


def _write_report_after_run(result: Any, args: argparse.Namespace) -> None:
    """The report, at the end of a run; a problem with it never changes the run's exit status."""
    from cnnlab.report import write_report

    try:
        path = write_report(result.folder, study=result.plan[0].study if result.plan else None,
                            data_dir=getattr(args, "data_dir", None))
    except CnnlabError as error:
        print(f"warning: the report was not written: {error}", file=sys.stderr)
    else:
        print(f"Report: {path}")


def command_report(args: argparse.Namespace) -> int:
    from cnnlab.report import command_report as report

    report(args.folder, args.output, args.study, args.format)
    return 0


def command_ls(args: argparse.Namespace) -> int:
    from cnnlab.analysis.tables import format_results, result_rows
    from cnnlab.store import Store

    with Store(args.folder, create=False) as store:
        study = store.study(args.study)
        runs = store.runs(study["name"])
    if args.runs:
        return _print_runs(runs, args.json)
    rows = result_rows(runs)
    if args.json:
        _print_json([row.to_dict() for row in rows])
    else:
        print(format_results(rows, title=f"Study '{study['name']}' in {args.folder}: {len(runs)} runs"))
    return 0


def _print_runs(runs: list[dict[str, Any]], as_json: bool) -> int:
    from cnnlab.spec.plan import configuration_label

    if as_json:
        _print_json([{k: v for k, v in run.items() if k != "config"} for run in runs])
        return 0
    for run in runs:
        label = configuration_label(run["architecture"], run["variant"], run["sweep"] or {}, run["phase"])
        val = "" if run["val_accuracy"] is None else f" val_acc {100 * run['val_accuracy']:.2f}%"
        print(f"{run['id']}  {run['status']:<11} {label} repeat {run['repeat']}"
              + ("" if run["fold"] is None else f" fold {run['fold']}")
              + f" epochs {run['epochs_done']}{val}")
        if run["error"]:
            print(f"    {run['error']}")
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from cnnlab.analysis.comparisons import compare, format_comparisons, run_results
    from cnnlab.analysis.findings import comparison_finding
    from cnnlab.store import Store

    if len(args.configurations) % 2:
        raise SpecError(f"configurations come in pairs (A B: compare B against A); got {len(args.configurations)}")
    with Store(args.folder, create=False) as store:
        study = store.study(args.study)
        results = run_results(store, study["name"])
    evaluate = (study["spec"] or {}).get("evaluate") or {}
    metric = args.metric or evaluate.get("select") or "val_accuracy"
    pairs = list(zip(args.configurations[::2], args.configurations[1::2]))
    if pairs:
        comparisons = compare([r for r in results if r.configuration in set(args.configurations)], metric, pairs=pairs)
        comparisons = [c for c in comparisons if (c.baseline, c.variant) in set(pairs)]
    else:
        comparisons = compare(results, metric, evaluate.get("baseline"))
    if args.json:
        _print_json([{
            "baseline": c.baseline, "configuration": c.variant, "metric": c.metric, "n": c.n,
            "difference": c.test.difference.mean, "ci_low": c.test.difference.low, "ci_high": c.test.difference.high,
            "p": c.test.p, "p_holm": c.p_holm, "verdict": c.verdict,
        } for c in comparisons])
        return 0
    print(format_comparisons(comparisons, metric))
    if comparisons:
        print()
        for comparison in comparisons:
            print("- " + comparison_finding(comparison).text)
    return 0


def command_spec(args: argparse.Namespace) -> int:
    from cnnlab.spec.study import Study

    if args.schema:
        _print_json(Study.model_json_schema())
        return 0
    if args.file is None:
        raise SpecError("give a study file (cnnlab spec study.yaml) or --schema")
    from cnnlab.spec.loader import load_study
    from cnnlab.spec.plan import expand

    study, _ = load_study(args.file)
    plan = expand(study)
    problems = check_models(study, plan)
    if args.json:
        _print_json({"study": study.name, "runs": [{"id": c.run_id, **c.model_dump(mode="json")} for c in plan],
                     "problems": problems})
        return 1 if problems else 0
    sweep = len(plan) // max(len(study.architectures) * len(study.variants) * study.repeats * max(study.evaluate.kfold, 1), 1)
    print(f"Study '{study.name}': {len(plan)} runs = {len(study.architectures)} architectures x "
          f"{len(study.variants)} variants x {sweep} sweep points x {study.repeats} repeats"
          + (f" x {study.evaluate.kfold} folds" if study.evaluate.kfold else ""))
    print(f"dataset {study.dataset.name}, {study.train.epochs} epochs, batch {study.train.batch_size}, "
          f"optimizer {study.train.optimizer.name} lr {study.train.optimizer.lr}")
    for number, config in enumerate(plan, start=1):
        fold = "" if config.fold is None else f" fold {config.fold}"
        print(f"{number:>4}  {config.run_id}  {config.label}  repeat {config.repeat}{fold}  seed {config.seed}")
    if problems:
        print(f"{len(problems)} configuration(s) cannot be built; their runs would fail:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


def check_models(study: Any, plan: list[Any]) -> list[str]:
    """Check each distinct model on the dataset's shape (when known without loading) for shape
    errors and memory it cannot have, before anything is allocated or trained."""
    from cnnlab.data import known_shape
    from cnnlab.models import resolve_layers
    from cnnlab.models.memory import check_memory
    from cnnlab.models.shapes import check_shapes

    shape = known_shape(study.dataset)
    problems, seen = [], set()
    for config in plan:
        key = (config.architecture, config.variant, repr(config.sweep))
        if key in seen:
            continue
        seen.add(key)
        try:
            resolved = resolve_layers(config.layer_list(), config.variant_spec)
            if shape is not None:
                infos = check_shapes(resolved, shape[0], shape[1])
                check_memory(infos, config.train.batch_size, config.train.optimizer.name)
        except CnnlabError as error:
            problems.append(f"{config.label}: {error}")
    return problems


def command_summary(args: argparse.Namespace) -> int:
    from cnnlab.models import build_model, format_summary, summarize
    from cnnlab.spec.loader import load_study
    from cnnlab.spec.plan import expand

    study, _ = load_study(args.spec)
    for name, known in (("architecture", (args.arch, study.architectures)), ("variant", (args.variant, study.variants))):
        for wanted in known[0] or []:
            if wanted not in known[1]:
                from cnnlab.registry import did_you_mean

                raise SpecError(f"no {name} '{wanted}' in {args.spec}{did_you_mean(wanted, list(known[1]))}; "
                                f"there are: {', '.join(known[1])}")
    input_shape, classes = _input_shape(study, args.data_dir)
    out, seen = [], set()
    for config in expand(study):
        key = (config.architecture, config.variant, repr(config.sweep))
        if key in seen or (args.arch and config.architecture not in args.arch) or (args.variant and config.variant not in args.variant):
            continue
        seen.add(key)
        built = build_model(config.layer_list(), input_shape, classes, variant=config.variant_spec, init="default")
        summary = summarize(built)
        if args.json:
            out.append({"configuration": config.label, **summary.to_dict()})
        else:
            print(format_summary(summary, title=config.label))
            print()
    if args.json:
        _print_json(out)
    return 0


def _input_shape(study: Any, data_dir: Any) -> tuple[tuple[int, int, int], int]:
    from cnnlab.data import known_shape, load_source

    shape = known_shape(study.dataset)
    if shape is not None:
        return shape
    source = load_source(study.dataset, data_dir)
    return tuple(source.train.images.shape[1:]), len(source.class_names)


def command_explain(args: argparse.Namespace) -> int:
    from cnnlab.explain.command import command_explain as explain

    return explain(args)


def command_datasets(args: argparse.Namespace) -> int:
    from cnnlab.data import dataset_table

    rows = dataset_table(args.data_dir)
    if args.json:
        _print_json(rows)
        return 0

    def count(value: Any) -> str:
        return "-" if value is None else f"{value:,}"

    cells = [("name", "shape", "classes", "train", "test")]
    for row in rows:
        shape = "x".join(map(str, row["shape"])) if row["shape"] else "from files"
        cells.append((row["name"], shape, count(row["classes"]), count(row["train"]), count(row["test"])))
    widths = [max(len(line[i]) for line in cells) for i in range(5)]
    for number, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)) + ("  files" if number == 0 else ""), end="")
        if number:
            row = rows[number - 1]
            print(f"  {row['state']}")
            print(f"{'':<{widths[0]}}  {row['description']}")
        else:
            print()
    return 0
