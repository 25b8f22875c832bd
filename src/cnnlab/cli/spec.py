"""``cnnlab spec``, ``cnnlab summary`` and ``cnnlab datasets``: what a study means before it runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cnnlab.cli.arguments import print_json
from cnnlab.errors import SpecError


def add_spec(commands: Any) -> argparse.ArgumentParser:
    """The ``spec`` subcommand and its options."""
    spec = commands.add_parser("spec", help="validate a study file and print its plan, or the spec's JSON schema",
                               description="Validate a study file and list the runs it expands to (architecture x "
                               "variant x sweep point x repeat x fold), with each run's id and seed.")
    spec.add_argument("file", type=Path, nargs="?", help="the study file (YAML)")
    overrides_argument(spec)
    spec.add_argument("--schema", action="store_true", help="print the JSON schema of the spec format")
    spec.add_argument("--json", action="store_true", help="print the plan as JSON")
    spec.set_defaults(handler=command_spec)
    return spec


OVERRIDES_HELP = ("set a setting of the spec, as editing the file would (so the runs' ids change as the edit's "
                  "would): its path as the spec's errors name it, with [N] for a list's item from 0, and a YAML value "
                  "(train.optimizer.lr=0.01 repeats=5 variants.l2.l2=1e-4 architectures.A1[0].conv.filters=64 "
                  "'sweep.conv.kernel=[3, 5]'); validated as the spec is, stored with the study, shown by the report "
                  "and 'cnnlab ls'")


def overrides_argument(parser: argparse.ArgumentParser) -> None:
    """``KEY=VALUE ...`` after the spec file (``cnnlab run`` and ``cnnlab spec``); ``main`` also takes
    them after options, which argparse alone would refuse."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)


def add_summary(commands: Any) -> argparse.ArgumentParser:
    """The ``summary`` subcommand and its options."""
    summary = commands.add_parser("summary", help="Keras-style model summaries of a study's architectures",
                                  description="Layer names, output shapes and parameter counts (total / trainable / "
                                  "non-trainable, batch-norm statistics counted as non-trainable as Keras does).")
    summary.add_argument("spec", type=Path, help="the study file (YAML)")
    summary.add_argument("--arch", action="append", help="only this architecture (repeatable)")
    summary.add_argument("--variant", action="append", help="only this variant (repeatable)")
    summary.add_argument("--data-dir", type=Path, help="where dataset files are (npz/folder datasets are read for their shape)")
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.set_defaults(handler=command_summary)
    return summary


def add_datasets(commands: Any) -> argparse.ArgumentParser:
    """The ``datasets`` subcommand and its options."""
    datasets = commands.add_parser("datasets", help="list datasets and where their files are",
                                   description="List the datasets cnnlab knows, their shapes and sizes, and whether "
                                   "their files are cached, embedded, or will be downloaded.")
    datasets.add_argument("--data-dir", type=Path, help="also look here")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    datasets.set_defaults(handler=command_datasets)
    return datasets


def command_spec(args: argparse.Namespace) -> int:
    """Validate a study file and print its plan (or the JSON schema); exit status 1 when a model cannot be built."""
    from cnnlab.spec.study import Study

    if args.schema:
        print_json(Study.model_json_schema())
        return 0
    if args.file is None:
        raise SpecError("give a study file (cnnlab spec study.yaml) or --schema")
    from cnnlab.execute.preflight import known_shape_problems
    from cnnlab.spec.loader import load_study
    from cnnlab.spec.overrides import apply_overrides, override_words, parse_overrides
    from cnnlab.spec.plan import expand

    overrides = parse_overrides(args.overrides)
    study = apply_overrides(load_study(args.file)[0], overrides)
    plan = expand(study)
    problems = known_shape_problems(study, plan)
    if args.json:
        print_json({"study": study.name, "overrides": override_words(overrides),
                    "runs": [{"id": c.run_id, **c.model_dump(mode="json")} for c in plan], "problems": problems})
        return 1 if problems else 0
    for line in plan_lines(study, plan):
        print(line)
    if overrides:
        print(f"with {' '.join(override_words(overrides))} over {args.file}")
    print(f"dataset {study.dataset.name}, {study.train.epochs} epochs, batch {study.train.batch_size}, "
          f"optimizer {study.train.optimizer.name} lr {study.train.optimizer.lr}")
    for number, config in enumerate(plan, start=1):
        fold = "" if config.fold is None else f" fold {config.fold}"
        own = f"  ({config.train.epochs} epochs)" if config.train.epochs != study.train.epochs else ""
        print(f"{number:>4}  {config.run_id}  {config.label}  repeat {config.repeat}{fold}  seed {config.seed}{own}")
    for line in finals_lines(study):
        print(line)
    if problems:
        print(f"{len(problems)} configuration(s) cannot be built; 'cnnlab run' refuses the study until they are "
              "fixed:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


def _count(amount: int, word: str) -> str:
    return f"{amount:,} {word}" + ("" if amount == 1 else "s")


def plan_lines(study: Any, plan: list) -> list[str]:
    """What the plan holds, counted: configurations x repeats (x folds), the k-fold experiment, the finals."""
    selected = [c for c in plan if c.phase == "select"]
    experiment = [c for c in plan if c.phase == "kfold"]
    configurations = len({c.config_key for c in selected})
    points = len({json.dumps(c.sweep, sort_keys=True, default=str) for c in selected})
    folds = f" x {study.evaluate.folds} folds" if study.evaluate.folds else ""
    every = len(study.architectures) * len(study.variants) * points
    counts = (f"{_count(len(study.architectures), 'architecture')}, {_count(len(study.variants), 'variant')}, "
              f"{_count(points, 'sweep point')}")
    if configurations != every:
        counts += f"; the variants' scopes keep {configurations} of the {every} combinations"
    lines = [f"Study '{study.name}': {_count(len(plan), 'run')}: {_count(configurations, 'configuration')} x "
             f"{_count(study.repeats, 'repeat')}{folds} ({counts})"]
    if experiment:
        names = ", ".join(dict.fromkeys(c.label for c in experiment))
        lines.append(f"  plus {_count(len(experiment), 'run')} of the k-fold experiment ({study.evaluate.kfold_experiment.folds} "
                     f"folds x {_count(study.repeats, 'repeat')} of {names}); the fixed split alone is used for selection")
    if study.evaluate.validate_on == "test":
        lines.append("  validation on the TEST split (evaluate.validate_on: test): every choice sees the test split, "
                     "so its numbers are optimistic")
    return lines


def finals_lines(study: Any) -> list[str]:
    """The finals the study adds once the plan has run (chosen on validation, so not listed by id)."""
    evaluate = study.evaluate
    rules = evaluate.final_rules()
    if not rules:
        return []
    epochs = (f"{evaluate.final_epochs} epochs" if isinstance(evaluate.final_epochs, int)
              else "the mean best epoch of its runs")
    data = "train+val" if evaluate.retrain_on == "train+val" else "the training split"
    curves = ", measuring the test split after every epoch" if evaluate.test_curves else ", measuring the test split once"
    lines = [f"then {_count(len(rules), 'final')}, each retrained on {data} for {epochs}{curves}:"]
    constraint = evaluate.constraint
    limits = [] if constraint is None else [f"{name} <= {value:g}" for name, value in
                                            (("parameters", constraint.max_params),
                                             ("training seconds", constraint.max_train_seconds)) if value is not None]
    among = f" among configurations with {' and '.join(limits)}" if limits else ""
    for number, metric in enumerate(rules, start=1):
        way = "smallest train-validation gap (closest to zero)" if metric == "gap" else f"best {metric}"
        lines.append(f"  final {number}: the {way}{among}" + (" not chosen before" if number > 1 else ""))
    excluded = [name for name, variant in study.variants.items() if not variant.candidate]
    if excluded:
        lines.append(f"  never chosen (candidate: false): {', '.join(excluded)}")
    return lines


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
        print_json(out)
    return 0


def _input_shape(study: Any, data_dir: Any) -> tuple[tuple[int, int, int], int]:
    from cnnlab.data import known_shape, load_source

    shape = known_shape(study.dataset)
    if shape is not None:
        return shape
    source = load_source(study.dataset, data_dir)
    return tuple(source.train.images.shape[1:]), len(source.class_names)


def command_datasets(args: argparse.Namespace) -> int:
    from cnnlab.data import dataset_table

    rows = dataset_table(args.data_dir)
    if args.json:
        print_json(rows)
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
