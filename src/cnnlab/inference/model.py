"""A finished run as a model to use elsewhere: its module in eval mode, the training's exact
preprocessing, its class names and input shape.

What the model needs besides its weights is read from the weights file's metadata
(``store.artifacts.read_inference``). Runs stored before cnnlab kept it there get it recomputed
as ``cnnlab explain`` does: ``unit`` and ``none`` need nothing, ``standardize`` recomputes the
training split's statistics from the dataset (``data_dir``) through the same cache and split code
the run trained with; a dataset that cannot be loaded then is a DataError saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from pydantic import ValidationError

from cnnlab.data import ArrayDataset, DataCache, normalization
from cnnlab.data.folder import conform_image
from cnnlab.errors import DataError, StoreError
from cnnlab.models import resolved_to_dicts
from cnnlab.records import RunRecord
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store
from cnnlab.store.lookup import find_run, rebuilt_model
from cnnlab.store.artifacts import inference_facts, read_inference, read_weights
from cnnlab.train import Normalizer

BATCH = 256  # images per forward pass when predicting many


@dataclass
class LoadedModel:
    """A finished run's model: ``module`` (torch, eval mode, CPU unless asked), ``preprocess`` (uint8
    images -> the float input the run trained on), ``class_names`` (output column i is class i),
    ``input_shape`` (C, H, W), ``run_id`` and ``facts`` (what the weights file's metadata holds)."""

    module: torch.nn.Module
    run_id: str
    class_names: list[str]
    input_shape: tuple[int, int, int]
    facts: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the resolved layer list, as data
    normalizer: Normalizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        channels = self.input_shape[0]
        scale = torch.tensor(self.facts["scale"], dtype=torch.float32).reshape(1, channels, 1, 1)
        shift = torch.tensor(self.facts["shift"], dtype=torch.float32).reshape(1, channels, 1, 1)
        self.normalizer = Normalizer(scale, shift)

    @property
    def device(self) -> torch.device:
        parameter = next(self.module.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def preprocess(self, images: Any) -> torch.Tensor:
        """Float input N x C x H x W for the module, normalized exactly as in training. ``images``: uint8
        arrays or tensors (N x C x H x W, N x H x W x C, one image C x H x W or H x W x C, or N x H x W and
        H x W for a 1-channel model) of the model's size, or Pillow images (one or a list), which are
        converted and resized as the folder dataset reads image files. On the module's device, so
        ``module(preprocess(images))`` runs wherever the model was loaded."""
        return self.normalizer(_tensor(self.pixels(images))).to(self.device)

    def pixels(self, images: Any) -> np.ndarray:
        """The uint8 N x C x H x W batch ``preprocess`` normalizes (see there for what it takes)."""
        if isinstance(images, (list, tuple)):
            if not images:
                raise DataError("no images given to preprocess")
            return np.concatenate([self.pixels(image) for image in images])
        if _is_pillow(images):
            return self.pixels(conform_image(images, self.image_mode(), self.input_shape[1:]))
        array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if array.dtype != np.uint8:
            raise DataError(f"images are {array.dtype}; the model takes uint8 pixels 0-255 as training read them. "
                            "Convert them first, e.g. np.round(x * 255).astype(np.uint8) for floats in 0-1.")
        return _nchw(array, self.input_shape)

    def probabilities(self, images: Any, batch_size: int = BATCH) -> np.ndarray:
        """Softmax outputs (float32, N x classes) for ``images`` as ``preprocess`` takes them."""
        pixels = self.pixels(images)
        outputs = []
        with torch.no_grad():
            for start in range(0, len(pixels), batch_size):
                x = self.normalizer(_tensor(pixels[start:start + batch_size])).to(self.device)
                outputs.append(self.module(x).float().softmax(1).cpu())
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, len(self.class_names)), np.float32)

    def image_mode(self) -> str:
        """The Pillow mode image files are converted to (L, RGB, RGBA); a DataError for other channel counts."""
        mode = self.facts.get("image_mode")
        if mode is None:
            raise DataError(f"the model takes {self.input_shape[0]}-channel images; image files can be fed to 1 "
                            "(grayscale), 3 (RGB) or 4 (RGBA) channel models only: give uint8 arrays instead")
        return mode


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    # Pillow's and np.load's arrays may be read-only views, which torch shares only with a warning.
    return torch.from_numpy(np.require(pixels, requirements=["C", "W"]))


def _is_pillow(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "convert")


def _nchw(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """uint8 images in any layout ``LoadedModel.preprocess`` takes, as N x C x H x W. The model's shape
    decides the layout; channels-last wins when both readings fit (as for an npz dataset)."""
    channels, height, width = shape
    if array.ndim == 2 and channels == 1 and array.shape == (height, width):
        return array[None, None]
    if array.ndim == 3:
        if array.shape == (height, width, channels):
            return array.transpose(2, 0, 1)[None]
        if array.shape == (channels, height, width):
            return array[None]
        if channels == 1 and array.shape[1:] == (height, width):
            return array[:, None]
    if array.ndim == 4:
        if array.shape[1:] == (height, width, channels):
            return array.transpose(0, 3, 1, 2)
        if array.shape[1:] == (channels, height, width):
            return array
    raise DataError(f"images of shape {tuple(array.shape)} do not fit the model's input {channels} x {height} x "
                    f"{width}: give uint8 N x {channels} x {height} x {width} or N x {height} x {width} x {channels} "
                    "arrays, or Pillow images (converted and resized as training read image files)")


# ---------------------------------------------------------------- loading a run


def load_model(folder: str | Path, run: str = "best", data_dir: Optional[str | Path] = None, *,
               study: Optional[str] = None, device: Optional[str | torch.device] = None) -> LoadedModel:
    """The model of a finished run in an output folder of ``cnnlab run``: ``run`` is "best" (the run
    the report calls best), a run id or a unique prefix of one. ``data_dir`` is needed only for runs
    stored before cnnlab kept the normalization with the weights, whose ``standardize`` statistics are
    then recomputed from the dataset. The module stays on the CPU unless ``device`` is given."""
    with Store(folder, create=False) as store:
        record = find_run(store, run, study)
        if not record.done:
            raise StoreError(f"run {record.id} is {record.status}; only a finished run has a model to load")
        try:
            config = RunConfig.model_validate(record.config)
        except ValidationError:
            raise StoreError(f"{store.path}: run {record.id}: column config_json is not what cnnlab writes there; "
                             "the store was damaged or changed by hand. Rerun the study into a new folder") from None
        data = store.artifact_bytes(record.id, "weights")
        where = store.artifact_path(record.id, "weights")
        if data is None:
            raise StoreError(f"run {record.id} has no saved weights (see 'cnnlab ls {store.folder} --runs')")
    weights = read_weights(data, where)
    facts = read_inference(data, where) or _recomputed_facts(record, config, data_dir)
    input_shape = tuple(int(n) for n in facts["input_shape"])
    class_names = list(facts["class_names"])
    built = rebuilt_model(record, config, input_shape, len(class_names), weights, device)
    return LoadedModel(built.module, record.id, class_names, input_shape, facts,  # type: ignore[arg-type]
                       layers=resolved_to_dicts(built.resolved))


def _recomputed_facts(record: RunRecord, config: RunConfig, data_dir: Optional[str | Path]) -> dict[str, Any]:
    """The inference facts of a run stored before cnnlab kept them with its weights (see the module doc)."""
    if not record.input_shape or not record.class_names:
        raise StoreError(f"run {record.id} has no recorded input shape or class names; rerun it with this cnnlab")
    mode = config.dataset.normalize
    if mode == "standardize":
        try:
            train = DataCache(Path(data_dir) if data_dir else None).split(config)[1]
        except DataError as error:
            raise DataError(f"run {record.id} was stored before cnnlab kept its input normalization with its weights, "
                            "and its 'normalize: standardize' needs the training split's mean and std, recomputed "
                            f"from the dataset, which could not be loaded: {error} Give --data-dir (data_dir=) where "
                            "the dataset is, or rerun the study with this cnnlab.") from None
    else:  # unit and none do not depend on the data
        train = ArrayDataset(torch.zeros((1, record.input_shape[0], 1, 1), dtype=torch.uint8),
                             torch.zeros(1, dtype=torch.int64))
    scale, shift = normalization(mode, train)
    return inference_facts(run_id=record.id, cnnlab_version=record.code_version or "unknown",
                           input_shape=record.input_shape, class_names=record.class_names, normalize=mode, scale=scale,
                           shift=shift, dataset=config.dataset)
