"""CNNLAB_FAST=0 trains on PyTorch's plain path, and to float rounding it learns the same thing."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.models import build_model
from cnnlab.spec.training import Train
from cnnlab.train import Normalizer, TrainData, Trainer
from cnnlab.train.fast import FAST_SWITCH, FastForward

from tests.models.architectures import layers

# A conv, a pool, a dense hidden layer: every piece of the fast path (channels-last convolution,
# activation moved past the pooling, the compiled pooling kernel, oneDNN dense, fused Adam).
SMALL = [{"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten",
         {"dense": 32}, {"dense": 10}]
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def _digits() -> TrainData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().clip(0, 255)).to(torch.uint8)[:, None]
    labels = torch.from_numpy(bunch.target).long()
    train, val = ArrayDataset(images[:1200], labels[:1200]), ArrayDataset(images[1200:], labels[1200:])
    return TrainData(train, val, None, Normalizer(torch.full((1, 1, 1, 1), 1 / 255.0), torch.zeros((1, 1, 1, 1))))


def _train(monkeypatch, fast: str) -> Trainer:
    monkeypatch.setenv(FAST_SWITCH, fast)
    built = build_model(layers(SMALL), (1, 8, 8), 10, generator_seed=0)
    spec = Train.model_validate({"optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 32, "epochs": 2})
    trainer = Trainer(built, _digits(), spec, seed=0, device=torch.device("cpu"))
    trainer.fit()
    return trainer


def test_training_with_the_fast_path_off_gives_the_same_epochs(monkeypatch):
    fast, plain = _train(monkeypatch, "1"), _train(monkeypatch, "0")
    # Two different paths were taken...
    assert isinstance(fast.forward, FastForward) and fast.memory_format == torch.channels_last
    assert fast.optimizer.defaults["fused"]
    assert plain.forward is plain.model and plain.memory_format == torch.contiguous_format
    assert not plain.optimizer.defaults["fused"]
    # ...to the same place: oneDNN and MKL sum dense products in different orders, so float32
    # rounding differs, and over two epochs of Adam that stays far below these tolerances.
    assert len(fast.history) == len(plain.history) == 2
    for epoch, (ours, theirs) in enumerate(zip(fast.history, plain.history)):
        for metric in METRICS:
            assert ours[metric] == pytest.approx(theirs[metric], rel=1e-3, abs=1e-3), (epoch, metric)
    for name, value in fast.model.state_dict().items():
        torch.testing.assert_close(value, plain.model.state_dict()[name], rtol=1e-3, atol=1e-3)
