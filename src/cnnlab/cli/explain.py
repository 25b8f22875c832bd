"""``cnnlab explain DIR``: write a finished run's explain figures as PNG (or SVG, PDF) files and list them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

from cnnlab.errors import SpecError

HELP = ("write a finished run's interpretation figures (filters, feature maps, histograms, confusion, ...) "
        "as PNG, SVG or PDF files")
DESCRIPTION = (
    "Write the interpretation figures of one finished run as PNG (or SVG, PDF) files and print each path: filters, feature "
    "maps (with the input's preprocessing), weight and bias histograms (overlaid across the variants of the "
    "architecture), saliency and guided backpropagation (per class, and per unit of a layer), top-activating "
    "patches traced back through the exact receptive field (per neuron, and grouped by the class each neuron responds "
    "to), classified examples, and the confusion matrix with "
    "each class's precision, recall and F1 (top-5 accuracy past 10 classes). Without --what, the study's explain: "
    "section decides (default: filters,maps,hist,examples). --figures svg or pdf writes vector files for a paper."
)


def add_explain(commands: Any) -> argparse.ArgumentParser:
    """The ``explain`` subcommand and its options."""
    explain = commands.add_parser("explain", help=HELP, description=DESCRIPTION)
    add_arguments(explain)
    explain.set_defaults(handler=command_explain)
    return explain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cnnlab explain`` (also on a bare parser, as the tests build one)."""
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="the run to explain (its id or a unique prefix; see 'cnnlab ls DIR --runs')")
    which.add_argument("--best", action="store_true",
                       help="the best run, as the report defines it: the final retrain of the configuration "
                       "chosen on validation, else that configuration's median repeat (the default)")
    which.add_argument("--config", metavar="LABEL",
                       help="a configuration as 'cnnlab ls' labels it (e.g. A3/batchnorm): its median repeat "
                       "on the selection metric (its final retrain, for a '(final)' label)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", type=Path, metavar="FILE",
                        help="an image file (PNG, JPEG), or sample:china / sample:flower (scikit-learn's two photos), "
                        "to feed, resized to the model's input")
    source.add_argument("--index", metavar="SPLIT:I", help="a dataset image, e.g. test:3 (default: the spec's, else test:0)")
    parser.add_argument("--layers", nargs="+", metavar="LAYER",
                        help="layers for filters, feature maps and neurons, by name or 1-based position in the run's "
                        "model (e.g. conv1 maxpool1 conv2, or 1 2 3 4; -1 is the last; 'all' for every layer)")
    parser.add_argument("--what", metavar="LIST",
                        help="comma list of: filters,maps,hist,saliency,guided,patches,examples,confusion (patches: "
                        "per neuron, and by class)")
    parser.add_argument("--figures", choices=["png", "svg", "pdf"], default="png",
                        help="the file format: png (default), or svg or pdf (vector, for a paper)")
    parser.add_argument("--out", type=Path, metavar="FOLDER", help="where to write (default: DIR/explain/<run id>/)")
    parser.add_argument("--data-dir", type=Path, help="where dataset files are (default: $CNNLAB_DATA, then the user cache)")
    parser.add_argument("--study", help="which study, when the folder holds several")


def command_explain(args: argparse.Namespace) -> int:
    """Explain one run of the store in ``args.folder`` (``--run ID``, else the best run) and print each file."""
    from cnnlab.explain.figures import default_folder, explain_run, parse_what
    from cnnlab.store.lookup import best_run, find_run
    from cnnlab.store import Store

    if args.run and args.best:
        raise SpecError("give either --run ID or --best, not both")
    if args.image is not None and args.index is not None:
        raise SpecError("give either --image FILE or --index split:i, not both")
    what = parse_what(args.what) if args.what else None
    layers = _layer_list(args.layers)
    with Store(args.folder, create=False) as store:
        if args.run:
            record = find_run(store, args.run)
        elif args.config:
            record = _configuration_run(store, args.study, args.config)
        else:
            study = store.study(args.study)["name"]
            record = best_run(store, study)
            accuracy = record.val_accuracy
            print(f"explaining the best run {record.id} ({record.architecture}/{record.variant}"
                  + (f", val acc {100 * accuracy:.2f}%" if accuracy is not None else "") + ")", file=sys.stderr)
        out = args.out if args.out is not None else default_folder(store, record.id)
        paths = explain_run(store, record.id, what=what, layers=layers, image=args.image, index=args.index,
                            out_folder=out, data_dir=args.data_dir, on_written=lambda path: print(path, flush=True),
                            figures=args.figures)
    if not paths:
        print("nothing to write", file=sys.stderr)
    return 0


def _configuration_run(store: Any, study: Optional[str], label: str) -> Any:
    """The run that stands for configuration ``label`` (by the best-run rule), said on stderr."""
    from cnnlab.analysis.comparisons import run_results
    from cnnlab.analysis.representative import configuration_run_id

    record = store.study(study)
    metric = record.setting("evaluate", "select", default="val_accuracy")
    run = store.run(configuration_run_id(run_results(store, record.name), label, metric))
    print(f"explaining {label} by its run {run.id} (repeat {run.repeat})", file=sys.stderr)
    return run


def _layer_list(layers: Optional[list[str]]) -> Optional[list[str]]:
    """``--layers conv1 conv2`` or ``--layers conv1,conv2`` -> ["conv1", "conv2"]; None stays None."""
    if not layers:
        return None
    names = [name.strip() for item in layers for name in str(item).split(",") if name.strip()]
    return names or None
