"""``cnnlab export DIR``: a finished run's model as an ONNX, TorchScript or safetensors file."""

from __future__ import annotations

import argparse
import textwrap
import sys
from pathlib import Path
from typing import Any

HELP = "write a finished run's model as ONNX, TorchScript or safetensors, to use without cnnlab"
DESCRIPTION = (
    "Write one finished run's model (the best run unless --run names one) as a file other programs load. "
    "onnx and torchscript take the image's pixel values as float32 N x C x H x W in 0-255 (not 0-1): the "
    "training's normalization is inside the model, and the output is the softmax probabilities, one column per "
    "class. Both carry a JSON description (input shape, normalization, class names, cnnlab version, run id): ONNX in "
    "its metadata_props, TorchScript as the extra file cnnlab.json. safetensors writes the bare weights (the model "
    "outputs logits; normalize yourself) and FILE.json beside them with the same facts and the layer list. The "
    "batch size is free. Prints the files written."
)
EPILOG = """\
examples:
  cnnlab export runs/quickstart                               the best run as runs/quickstart/export/<run id>.onnx
  cnnlab export runs/quickstart --format torchscript -o m.pt  TorchScript, for torch.jit.load('m.pt')
  cnnlab export runs/quickstart --run 3fa2 --format safetensors -o w.safetensors   weights + w.safetensors.json

using the ONNX file (Python, no torch needed):
  import json, numpy as np, onnxruntime as ort
  session = ort.InferenceSession("model.onnx")
  facts = json.loads(session.get_modelmeta().custom_metadata_map["cnnlab"])
  probabilities = session.run(None, {"pixels": images.astype(np.float32)})[0]   # images: uint8 N x C x H x W
  print(facts["class_names"][probabilities[0].argmax()])

exit status: 0 when written, 2 on bad input (no such run, an unfinished run, onnx not installed, a FILE that
cannot be written, DIR/export a link: without -o, export writes only inside DIR)
"""


def add_export(commands: Any) -> argparse.ArgumentParser:
    """The ``export`` subcommand and its options."""
    parser = commands.add_parser("export", help=HELP, description=textwrap.fill(DESCRIPTION, 100), epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="an output folder of 'cnnlab run'")
    run_arguments(parser)
    parser.add_argument("--format", choices=["onnx", "torchscript", "safetensors"], default="onnx",
                        help="onnx (default; needs the onnx package), torchscript (.pt) or safetensors (+ FILE.json)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write (default: DIR/export/<run id>.onnx, .pt or .safetensors)")
    parser.set_defaults(handler=command_export)
    return parser


def run_arguments(parser: argparse.ArgumentParser) -> None:
    """--run ID | --best, --study and --data-dir: which run's model (export and predict take them alike)."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="the run (its id or a unique prefix; see 'cnnlab ls DIR --runs')")
    which.add_argument("--best", action="store_true",
                       help="the best run, as the report defines it: the final retrain of the configuration chosen "
                       "on validation, else that configuration's median repeat (the default)")
    parser.add_argument("--study", help="which study, when the folder holds several")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="where dataset files are; needed only for a 'normalize: standardize' run stored before "
                        "cnnlab kept the normalization with the weights (its statistics are recomputed from the "
                        "training split)")


def load_chosen(args: argparse.Namespace) -> Any:
    """The model ``--run`` / ``--best`` names, said on stderr."""
    from cnnlab.inference import load_model

    loaded = load_model(args.folder, args.run or "best", args.data_dir, study=args.study)
    which = "the best run" if not args.run else "run"
    print(f"using {which} {loaded.run_id} ({'x'.join(map(str, loaded.input_shape))} input, "
          f"{len(loaded.class_names)} classes)", file=sys.stderr)
    return loaded


def command_export(args: argparse.Namespace) -> int:
    """Export the chosen run's model and print each file written."""
    from cnnlab.inference import default_path, export_model

    loaded = load_chosen(args)
    path = args.output if args.output is not None else default_path(args.folder, loaded.run_id, args.format)
    for written in export_model(loaded, args.format, path):
        print(written, flush=True)
    return 0
