"""The reference-study examples on small synthetic data shaped like their datasets: the same spec,
with the dataset an npz of that image shape and every split count shrunk 250 times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from cnnlab.spec.loader import read_yaml

# Image shape of each dataset the examples use, and 1/250 of its official train and test parts.
SHAPES = {"cifar10": (32, 32, 3), "mnist": (28, 28), "fashion_mnist": (28, 28)}
SHRINK = 250
TRAIN, TEST = 200, 40


def _images(count: int, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # A corner block whose brightness is the class, so a net can learn something in one epoch.
    labels = np.arange(count) % 10
    images = rng.integers(0, 120, size=(count, *shape), dtype=np.uint8)
    corner = (labels * 25).reshape((count,) + (1,) * len(shape))
    images[:, :4, :4] = np.broadcast_to(corner, images[:, :4, :4].shape)
    return images, labels


def _small(part):
    if isinstance(part, dict):
        return {**part, "count": _small(part["count"])}
    if isinstance(part, int) and not isinstance(part, bool) and part > 0:
        return max(10, part // SHRINK)
    return part  # 0, a fraction, rest, all


def small_example(example: Path, folder: Path) -> Path:
    """The example's spec beside an npz of synthetic images shaped like its dataset; its path."""
    spec, _ = read_yaml(example.read_text(), str(example))  # cnnlab's YAML: 'on:' stays a key
    name = spec["dataset"]["name"]
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _images(TRAIN, SHAPES[name], rng), _images(TEST, SHAPES[name], rng)
    data = folder / f"{name}-shaped.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    split = {key: _small(value) for key, value in (spec["dataset"].get("split") or {}).items()}
    spec["dataset"] = {**spec["dataset"], "name": "npz", "path": str(data), "split": split}
    path = folder / example.name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
