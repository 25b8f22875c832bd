"""A finished run's model as a file other programs load: ONNX, TorchScript, or safetensors + JSON.

ONNX and TorchScript hold the whole way from pixels to probabilities, so a user needs nothing of
cnnlab: the input ``pixels`` is float32 N x C x H x W holding uint8 pixel values (0-255, as an
image file or a uint8 array holds them, not 0-1), the training's normalization (``pixels * scale +
shift`` per channel) is inside the graph, and the output ``probabilities`` is the softmax, N x
classes, column i for class_names[i]. The batch axis is dynamic. Both carry the same JSON
(``export_facts``: the weights file's inference facts, see ``store.artifacts``, plus what the input
and output are): ONNX in its ``metadata_props`` (key ``cnnlab``, and flat keys for quick
reading), TorchScript as the extra file ``cnnlab.json``. safetensors holds the bare module's
state dict (it outputs logits; the normalization is the user's to apply) and ``<file>.json``
beside it adds the resolved layer list that rebuilds the module with ``cnnlab.models``.

ONNX is written by PyTorch's TorchScript-based exporter (``dynamo=False``): it needs only the
``onnx`` package (the dynamo exporter also needs onnxscript and its optimizer), it is in every
torch cnnlab supports (2.1 on; ``dynamo=`` arrived in 2.5), and it traces every layer cnnlab builds
with fixed image shapes and a dynamic batch axis. Every file is written atomically; safetensors' two
files both go to temporary names first and the weights are renamed into place before their JSON, so
a failed export never leaves a JSON beside weights it does not describe.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError, ModelError
from cnnlab.fsutil import write_bytes_atomic, write_together_atomic
from cnnlab.inference.model import LoadedModel
from cnnlab.store.artifacts import INFERENCE_KEY
from cnnlab.version import __version__

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"
EXTRA_FILE = "cnnlab.json"  # TorchScript's extra file holding the JSON
OPSET = 17  # onnxruntime 1.14 and later run it


class ExportError(CnnlabError):
    """An exported model cannot be written where it was asked to go."""


class Deployed(torch.nn.Module):
    """pixels (float32 0-255, N x C x H x W) -> softmax probabilities, the normalization inside."""

    def __init__(self, loaded: LoadedModel):
        super().__init__()
        self.model = copy.deepcopy(loaded.module).cpu().eval()  # the caller's module stays where it is
        self.register_buffer("scale", loaded.normalizer.scale.detach().clone().cpu())
        self.register_buffer("shift", loaded.normalizer.shift.detach().clone().cpu())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # The trainer's Normalizer: one multiply, one add, in float32.
        return torch.softmax(self.model(pixels * self.scale + self.shift), dim=1)


def export_facts(loaded: LoadedModel, format: str) -> dict[str, Any]:
    """The JSON an exported file carries: the run's inference facts, what the input and output are,
    and the cnnlab that exported it."""
    channels, height, width = loaded.input_shape
    facts = dict(loaded.facts, exported_by=f"cnnlab {__version__}", export_format=format)
    if format == "safetensors":
        facts.update(layers=loaded.layers, input="float32 N x C x H x W = uint8 pixels * scale + shift per channel "
                     "(apply the normalization yourself)", output="logits N x classes; softmax gives probabilities")
        return facts
    facts.update(
        normalization_in_graph=True,
        input={"name": INPUT_NAME, "dtype": "float32", "shape": ["batch", channels, height, width],
               "values": "pixel values 0-255 as uint8 images hold them (not 0-1); the graph normalizes them"},
        output={"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", len(loaded.class_names)],
                "values": "softmax probabilities; column i is class_names[i]"},
    )
    return facts


def default_path(folder: Path, run_id: str, format: str) -> Path:
    """Where ``cnnlab export`` writes without -o: DIR/export/<run id>.<onnx|pt|safetensors>. An
    ExportError when DIR/export or a file to be written there is a link: a study folder may come from
    anyone, and written through, the link would put files outside the folder (and the atomic write's
    clean-up of stale temporaries would delete files in its target). -o may go anywhere: the user's choice."""
    export = Path(folder) / "export"
    path = export / f"{run_id}{SUFFIXES[format]}"
    for step in (export, path, *([_beside(path)] if format == "safetensors" else [])):
        if step.is_symlink():
            raise ExportError(f"{step} is a link; cnnlab export writes only inside the output folder unless -o says "
                              "where, so nothing was written through it. Replace the link by a real folder or file, "
                              "or give -o FILE")
    return path


def _beside(path: Path) -> Path:
    """safetensors' JSON: FILE.json beside FILE."""
    return path.with_name(path.name + ".json")


def export_model(loaded: LoadedModel, format: str, path: str | Path) -> list[Path]:
    """Write ``loaded`` as ``format`` (onnx, torchscript, safetensors) to ``path``; the files written.
    An ExportError naming the path when it cannot be written there."""
    if format not in FORMATS:
        raise ModelError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give -o a file name, e.g. {path / (loaded.run_id + SUFFIXES[format])}")
    facts = export_facts(loaded, format)
    text = json.dumps(facts, indent=2)
    try:
        if format == "safetensors":
            from safetensors.torch import save

            state = {k: v.detach().cpu().contiguous() for k, v in loaded.module.state_dict().items()}
            # The weights rename into place first; both files are whole before either does.
            write_together_atomic([(path, save(state, metadata={INFERENCE_KEY: json.dumps(loaded.facts)})),
                                   (_beside(path), (text + "\n").encode("utf-8"))])
            return [path, _beside(path)]
        deployed = Deployed(loaded).eval()
        example = torch.zeros((2, *loaded.input_shape), dtype=torch.float32)
        data = _onnx(deployed, example, facts) if format == "onnx" else _torchscript(deployed, example, text)
        write_bytes_atomic(path, data)
    except OSError as error:  # a folder in the way, no such or no writable folder, a full disk
        raise ExportError(f"cannot write the exported model to {path}: {error.strerror or error}. Give -o a file "
                          "in a folder you can write") from None
    return [path]


def _onnx(deployed: Deployed, example: torch.Tensor, facts: dict[str, Any]) -> bytes:
    try:
        import onnx
    except ImportError:
        raise ModelError("exporting ONNX needs the onnx package: pip install onnx") from None
    buffer = io.BytesIO()
    # torch 2.5 and later take dynamo= (default True since 2.9); 2.1 to 2.4 have only the TorchScript exporter.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # its deprecation note and tracer notes are about torch, not the model
        torch.onnx.export(deployed, (example,), buffer, opset_version=OPSET, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          **legacy)
    model = onnx.load_from_string(buffer.getvalue())
    normalization = {key: facts[key] for key in ("normalize", "scale", "shift", "normalization_in_graph")}
    onnx.helper.set_model_props(model, {
        "cnnlab": json.dumps(facts), "run_id": facts["run_id"], "cnnlab_version": facts["cnnlab_version"],
        "input_shape": json.dumps(facts["input_shape"]), "class_names": json.dumps(facts["class_names"]),
        "normalization": json.dumps(normalization), "input": json.dumps(facts["input"]),
        "output": json.dumps(facts["output"]),
    })
    model.doc_string = (f"cnnlab run {facts['run_id']}: input '{INPUT_NAME}' float32 N x "
                        f"{' x '.join(map(str, facts['input_shape']))} of pixel values 0-255 (normalized inside); "
                        f"output '{OUTPUT_NAME}' softmax N x {len(facts['class_names'])}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _torchscript(deployed: Deployed, example: torch.Tensor, text: str) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes: the file still loads with torch.jit.load
        traced = torch.jit.trace(deployed, example)
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: text})
    return buffer.getvalue()

