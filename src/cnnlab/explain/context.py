"""One explain call's run, the choices it was given and what it computes once (the input and its
tensor, the split scans), shared by every figure maker (``figures``, ``neurons``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from cnnlab.explain.images import InputImage, is_sample, looks_like_index
from cnnlab.explain.runs import ExplainedRun


@dataclass
class FigureContext:
    """One call's run, choices and caches (the input, its tensor, the split scans)."""

    run: ExplainedRun
    layers: Optional[list[str]]
    image: Optional[Path | str]
    index: Optional[str]
    _input: Optional[tuple[InputImage, torch.Tensor]] = None
    _scans: dict = field(default_factory=dict)

    def input(self) -> tuple[InputImage, torch.Tensor]:
        if self._input is None:
            image, index = self.image, self.index
            if image is None and index is None and self.run.explain.feature_maps is not None:
                spec_image = self.run.explain.feature_maps.image
                if looks_like_index(spec_image):
                    index = spec_image
                elif is_sample(spec_image):
                    image = spec_image
                else:  # a file: as written, else beside the study file
                    image = Path(spec_image)
                    folder = self.run.spec_folder
                    if not image.is_absolute() and not image.exists() and folder is not None:
                        image = folder / image
            item = self.run.input(index=index, image=image)
            self._input = (item, self.run.model_input(item.image))
        return self._input

    def spatial_layers(self) -> list[str]:
        return [info.name for info in self.run.built.layers if len(info.output_shape) == 3]

    def conv_layers(self) -> list[str]:
        return [info.name for info in self.run.built.layers if info.kind == "conv"]
