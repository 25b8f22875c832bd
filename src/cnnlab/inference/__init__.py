"""Use a finished run's model elsewhere: load it with the training's exact preprocessing, export it
(ONNX, TorchScript, safetensors + JSON) and predict image files, folders and arrays.

    import cnnlab
    model = cnnlab.load_model("runs/quickstart")            # the best run, as the report says
    probabilities = model.probabilities(images)             # uint8 N x C x H x W (or N x H x W x C, PIL)
    x = model.preprocess(images)                             # the float input the run trained on
    logits = model.module(x)                                 # a torch.nn.Module in eval mode

Reads finished runs from the store (never through the executor); what the model needs besides
its weights travels in the weights file's metadata (``cnnlab.store.artifacts``).
"""

from cnnlab.inference.export import (
    FORMATS, SUFFIXES, Deployed, ExportError, default_path, export_facts, export_model,
)
from cnnlab.inference.model import LoadedModel, load_model
from cnnlab.inference.predict import (
    Prediction, PredictionSet, folder_files, predict_arrays, predict_files, predict_npz, read_npz_images, top_classes,
)

__all__ = [
    "FORMATS", "SUFFIXES", "Deployed", "ExportError", "LoadedModel", "Prediction", "PredictionSet", "default_path", "export_facts",
    "export_model", "folder_files", "load_model", "predict_arrays", "predict_files", "predict_npz",
    "read_npz_images", "top_classes",
]
