"""``cnnlab predict DIR IMAGE...``: a finished run's top classes for image files, a folder or an .npz."""

from __future__ import annotations

import argparse
import csv
import sys
import textwrap
from pathlib import Path
from typing import Any

from cnnlab.cli.arguments import positive, print_json
from cnnlab.cli.export import load_chosen, run_arguments
from cnnlab.errors import SpecError

HELP = "classify image files, a folder of them or an .npz of arrays with a finished run's model"
DESCRIPTION = (
    "Classify images with one finished run's model (the best run unless --run names one) and print each input's "
    "top classes with their probabilities. Image files are read exactly as the folder dataset reads them "
    "(converted to grayscale or RGB as the model takes, resized bilinearly to its height and width) and "
    "normalized as the run's training was; an .npz gives uint8 arrays (N x C x H x W or N x H x W x C) of the "
    "model's size. A file that cannot be read is refused with the reason and the others are still predicted."
)
EPILOG = """\
examples:
  cnnlab predict runs/quickstart digit.png cat.jpg           the best run's top 5 classes of each file
  cnnlab predict runs/quickstart --folder photos/ --top 1    every image under photos/ (hidden files skipped)
  cnnlab predict runs/quickstart --npz test.npz --json       arrays 'images' (else 'x_test', else the only one)
  cnnlab predict runs/quickstart --run 3fa2 a.png --csv > p.csv   one row per input and rank, for a spreadsheet

exit status: 0 when every input was predicted, 1 when some files were refused (the others are still
printed; the refused ones are listed on stderr, and under "refused" with --json), 2 on bad input
"""


def add_predict(commands: Any) -> argparse.ArgumentParser:
    """The ``predict`` subcommand and its options."""
    parser = commands.add_parser("predict", help=HELP, description=textwrap.fill(DESCRIPTION, 100), epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    parser.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--folder", dest="image_folder", type=Path, metavar="DIR",
                        help="predict every file under DIR (sorted; hidden files, Thumbs.db and desktop.ini skipped)")
    parser.add_argument("--npz", type=Path, metavar="FILE", help="predict the uint8 images in an .npz file")
    run_arguments(parser)
    parser.add_argument("--top", type=positive, default=5, metavar="K", help="how many classes per input (default 5)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output: the run, each input's top "
                        "classes (class, index, probability) and the refused files")
    output.add_argument("--csv", action="store_true", help="CSV: input,rank,class,index,probability")
    parser.set_defaults(handler=command_predict)
    return parser


def command_predict(args: argparse.Namespace) -> int:
    """Predict the inputs; print the top classes; exit status 1 when a file was refused."""
    given = [bool(args.images), args.image_folder is not None, args.npz is not None]
    if sum(given) != 1:
        raise SpecError("give what to predict, one of: image files (cnnlab predict DIR a.png b.png), "
                        "--folder IMAGES_DIR or --npz FILE")
    from cnnlab.inference import folder_files, predict_files, predict_npz  # torch: only once the arguments hold

    files = folder_files(args.image_folder) if args.image_folder is not None else args.images
    loaded = load_chosen(args)
    result = predict_npz(loaded, args.npz, args.top) if args.npz is not None else predict_files(loaded, files, args.top)
    if args.json:
        print_json(result.to_dict())
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["input", "rank", "class", "index", "probability"])
        for prediction in result.predictions:
            for rank, (index, name, probability) in enumerate(prediction.top, 1):
                writer.writerow([prediction.input, rank, name, index, repr(probability)])
    else:
        width = max((len(p.input) for p in result.predictions), default=0)
        for prediction in result.predictions:
            classes = "   ".join(f"{name} ({100 * probability:.2f}%)" for _, name, probability in prediction.top)
            print(f"{prediction.input:<{width}}   {classes}")
    if result.refused:
        total = len(result.refused) + len(result.predictions)
        print(f"refused {len(result.refused)} of {total} files (the others were predicted):", file=sys.stderr)
        for name, reason in result.refused:
            print(f"  {name}: {reason}", file=sys.stderr)
        return 1
    return 0
