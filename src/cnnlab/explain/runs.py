"""A finished run, rebuilt from the store for explaining: its model with weights, data and inputs.

Only the store is needed for what the weights alone show (filters, histograms, a file's
feature maps when the dataset is normalized by ``unit`` or ``none``); the dataset is loaded,
through the same cache and split code the run trained with, only when an input comes from a
split, a split is scanned, or ``standardize`` needs the training split's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from cnnlab.data import ArrayDataset, DataCache, Splits, normalization
from cnnlab.errors import DataError, StoreError
from cnnlab.explain.images import InputImage, load_input_image, parse_index
from cnnlab.models import BuiltModel
from cnnlab.records import RunRecord
from cnnlab.spec.plan import RunConfig
from cnnlab.spec.evaluate import Explain
from cnnlab.store import Store
from cnnlab.store.lookup import find_run, rebuilt_model
from cnnlab.train import Normalizer

T = TypeVar("T", bound=BaseModel)


@dataclass
class ExplainedRun:
    """A finished run: its store record, config, model (weights loaded, eval mode) and class names."""

    run_id: str
    record: RunRecord
    config: RunConfig
    built: BuiltModel
    class_names: list[str]
    explain: Explain
    data_dir: Optional[Path] = None
    spec_folder: Optional[Path] = None  # where the study file was; relative image paths in it start here
    cache: Optional[DataCache] = field(default=None, repr=False)
    _normalizer: Optional[Normalizer] = field(default=None, repr=False)

    @property
    def model(self) -> torch.nn.Module:
        return self.built.module

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.built.input_shape  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """The configuration's name in tables (``A2/l2``), with the repeat when there are several."""
        label = self.config.label
        if self.config.repeat:
            label += f" repeat {self.config.repeat}"
        if self.config.fold is not None:
            label += f" fold {self.config.fold}"
        return label

    def splits(self) -> Splits:
        """The run's exact splits (the dataset is loaded on first use)."""
        return self._split()[0]

    def _split(self) -> tuple[Splits, ArrayDataset]:
        if self.cache is None:
            self.cache = DataCache(self.data_dir)
        return self.cache.split(self.config)

    def split_data(self, split: str) -> ArrayDataset:
        """The images of one split (``train`` is the run's training set, ``limit_train`` applied)."""
        splits, train = self._split()
        data = train if split == "train" else getattr(splits, split, None)
        if data is None or len(data) == 0:
            raise DataError(f"run {self.run_id} has no '{split}' split (its sizes: {splits.sizes})")
        return data

    def normalizer(self) -> Normalizer:
        """uint8 -> model input, exactly as in training (``standardize`` reads the training split)."""
        if self._normalizer is None:
            mode = self.config.dataset.normalize
            if mode == "standardize":
                train = self._split()[1]
            else:  # unit and none do not depend on the data: no need to load it
                channels = self.input_shape[0]
                train = ArrayDataset(torch.zeros((1, channels, 1, 1), dtype=torch.uint8), torch.zeros(1, dtype=torch.int64))
            scale, shift = normalization(mode, train)
            self._normalizer = Normalizer(scale, shift)
        return self._normalizer

    def dataset_input(self, split: str, index: int) -> InputImage:
        data = self.split_data(split)
        if not 0 <= index < len(data):
            raise DataError(f"{split}:{index} is out of range; the {split} split of run {self.run_id} "
                            f"holds {len(data)} images (0 to {len(data) - 1})")
        return InputImage(image=data.images[index].numpy().copy(), source=f"{split}:{index}",
                          label=int(data.labels[index]))

    def input(self, index: Optional[str] = None, image: Optional[str | Path] = None) -> InputImage:
        """An input from ``index`` ("test:3"), an image file or a sample photo ("sample:china"); neither: test:0
        (val:0 without a test split)."""
        if image is not None:
            return load_input_image(image, self.input_shape)
        if index is not None:
            return self.dataset_input(*parse_index(index))
        splits = self.splits()
        return self.dataset_input("test" if splits.test is not None and len(splits.test) else "val", 0)

    def model_input(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Normalized float input (N x C x H x W) from uint8 images (C x H x W or N x C x H x W)."""
        batch = torch.tensor(np.asarray(images))  # a copy: inputs may be read-only arrays
        if batch.dim() == 3:
            batch = batch[None]
        return self.normalizer()(batch)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax outputs for a normalized batch, in eval mode."""
        from cnnlab.explain.activations import evaluating, model_device

        with evaluating(self.model), torch.no_grad():
            return self.model(x.to(model_device(self.model))).float().softmax(1).cpu()


def load_run(store: Store, run_id: str, data_dir: Optional[str | Path] = None,
             device: Optional[str | torch.device] = None) -> ExplainedRun:
    """Rebuild a finished run: config, model with its weights in eval mode, class names, explain settings.

    The model stays on the CPU unless ``device`` is given; inputs follow the model.
    """
    record = find_run(store, run_id)
    if not record.done:
        raise StoreError(f"run {record.id} is {record.status}; only finished runs can be explained")
    config = _stored(RunConfig, record.config, store, f"run {record.id}", "config_json")
    if not record.input_shape or not record.class_names:
        raise StoreError(f"run {record.id} has no recorded input shape or class names; rerun it with this cnnlab")
    input_shape = tuple(int(n) for n in record.input_shape)
    class_names = [str(name) for name in record.class_names]
    built = rebuilt_model(record, config, input_shape, len(class_names), store.load_weights(record.id), device)
    explain, spec_folder = study_explain(store, config.study)
    return ExplainedRun(run_id=record.id, record=record, config=config, built=built, class_names=class_names,
                        explain=explain, data_dir=Path(data_dir) if data_dir else None, spec_folder=spec_folder)


def study_explain(store: Store, study: str) -> tuple[Explain, Optional[Path]]:
    """The study spec's ``explain:`` settings (the defaults when it has none) and the spec file's folder."""
    try:
        record = store.study(study)
    except StoreError:
        return Explain(), None
    folder = Path(record.spec_path).parent if record.spec_path else None
    return _stored(Explain, record.setting("explain", default={}), store, f"study {study}", "spec_json"), folder


def _stored(model: type[T], value: object, store: Store, row: str, column: str) -> T:
    """A model validated from a store's column: what cnnlab wrote there validates; anything else
    was written by hand (or damaged) and is a StoreError naming the file, the row and the column."""
    try:
        return model.model_validate(value)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "its value"
        raise StoreError(f"{store.path}: {row}: column {column} is not what cnnlab writes there ({where}: "
                         f"{problem['msg']}); the store was damaged or changed by hand, so the run cannot be "
                         "rebuilt. Rerun the study into a new folder") from None


