"""Normalization and training-time augmentation, each over a whole batch at once.

Normalization is a per-channel ``scale`` and ``shift`` so the trainer turns a uint8 batch into
floats with one fused ``x.float() * scale + shift``. Augmentation works on a float batch
B x C x H x W with a torch.Generator: every random choice is one tensor draw for the batch and
the pixels move by indexing, with no per-sample Python loop.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from cnnlab.data.arrays import ArrayDataset
from cnnlab.errors import DataError


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean and (population) std of uint8 images, in 0-255 units, float64.

    Counted from a 256-bin histogram per channel: exact, and it never materializes a float
    copy of the dataset (50,000 CIFAR images would be 1.2 GB in float64).
    """
    values = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        means.append(mean)
        stds.append(((counts * (values - mean) ** 2).sum() / total).sqrt())
    return torch.stack(means), torch.stack(stds)


def normalization(spec_normalize: str, train: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift), each float32 of shape (1, C, 1, 1), for x.float() * scale + shift.

    unit: x / 255; standardize: (x - mean) / std with the training split's per-channel
    statistics (a constant channel keeps std 1 rather than dividing by zero); none: raw 0-255.
    """
    channels = train.images.shape[1]
    if spec_normalize == "unit":
        scale, shift = torch.full((channels,), 1.0 / 255.0, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
    elif spec_normalize == "none":
        scale, shift = torch.ones(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
    elif spec_normalize == "standardize":
        if len(train) == 0:
            raise DataError("normalize: standardize needs a non-empty training split to compute its mean and std.")
        mean, std = channel_statistics(train.images)
        std = torch.where(std > 0, std, torch.ones_like(std))
        scale, shift = 1.0 / std, -mean / std
    else:
        raise DataError(f"unknown normalize '{spec_normalize}'; known: unit, standardize, none.")
    return scale.to(torch.float32).reshape(1, channels, 1, 1), shift.to(torch.float32).reshape(1, channels, 1, 1)


def _kind(item: Any) -> tuple[str, int]:
    """('hflip', 0), ('crop', pad) or ('translate', max shift) from a spec item (or a dict)."""
    if isinstance(item, str):
        if item == "hflip":
            return "hflip", 0
        raise DataError(f"unknown augmentation {item!r}; known: hflip, crop: N, translate: N.")
    for key in ("crop", "translate"):
        value = item.get(key) if isinstance(item, dict) else getattr(item, key, None)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"augment {key}: expects a whole number of pixels >= 1; got {value!r}.")
            return key, value
    raise DataError(f"unknown augmentation {item!r}; known: hflip, crop: N, translate: N.")


def _draw(shape: tuple[int, ...], generator: torch.Generator, high: int | None = None) -> torch.Tensor:
    # Drawn on the generator's device, so a seed gives the same batch on CPU and GPU.
    if high is None:
        return torch.rand(shape, generator=generator, device=generator.device)
    return torch.randint(0, high, shape, generator=generator, device=generator.device)


def flip_horizontal(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    chosen = (_draw((x.shape[0],), generator) < 0.5).to(x.device)
    return torch.where(chosen[:, None, None, None], x.flip(3), x)


def shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and crop back to H x W at a random offset per image.

    This is both Keras-style random crop with padding and a random translation by up to
    ``pad`` pixels per axis with zero fill: the two are the same operation.
    """
    batch, channels, height, width = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = _draw((batch,), generator, 2 * pad + 1).to(x.device)
    dx = _draw((batch,), generator, 2 * pad + 1).to(x.device)
    rows = (dy[:, None] + torch.arange(height, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(width, device=x.device))[:, None, None, :]
    samples = torch.arange(batch, device=x.device)[:, None, None, None]
    planes = torch.arange(channels, device=x.device)[None, :, None, None]
    return padded[samples, planes, rows, cols]


def augment_batch(x: torch.Tensor, augment: Sequence[Any], generator: torch.Generator) -> torch.Tensor:
    """The batch with each augmentation applied in the listed order (training batches only).

    ``augment`` items are as in the spec: "hflip", Crop (``crop: N``), Translate
    (``translate: N``). Returns a new tensor; ``x`` is not modified.
    """
    if x.dim() != 4:
        raise DataError(f"augment_batch expects a batch B x C x H x W; got shape {tuple(x.shape)}.")
    for item in augment:
        kind, size = _kind(item)
        x = flip_horizontal(x, generator) if kind == "hflip" else shift(x, size, generator)
    return x
