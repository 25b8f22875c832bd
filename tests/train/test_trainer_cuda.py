"""Training on a CUDA device (skipped where there is none): without augmentation the uint8 training
images are moved to the GPU once and every batch is cut and normalized there; with augmentation
they stay on the host, where the seeded augmentation draws its randomness. Either way the run
trains as it does on the CPU, to float rounding."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.models import build_model
from cnnlab.spec.training import Train
from cnnlab.train import Normalizer, TrainData, Trainer
from tests.models.architectures import layers

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

MODEL = [{"conv": {"filters": 4, "kernel": 3}}, "flatten", {"dense": 10}]
SPEC = {"optimizer": {"name": "sgd", "lr": 0.05}, "batch_size": 16, "epochs": 2}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().clip(0, 255)).to(torch.uint8)[:, None]
    return images, torch.from_numpy(bunch.target).long()


def _run(digits, device: str, augment: list):
    images, labels = digits
    data = TrainData(ArrayDataset(images[:200], labels[:200]), ArrayDataset(images[200:300], labels[200:300]),
                     None, Normalizer(torch.full((1, 1, 1, 1), 1 / 255.0), torch.zeros((1, 1, 1, 1))), augment)
    built = build_model(layers(MODEL), (1, 8, 8), 10, generator_seed=0)
    trainer = Trainer(built, data, Train.model_validate(SPEC), seed=3, device=torch.device(device))
    return trainer, trainer.fit()


@pytest.mark.parametrize("augment", [[], ["hflip"]])
def test_a_cuda_run_trains_as_the_cpu_run(digits, augment):
    cpu_trainer, cpu = _run(digits, "cpu", augment)
    trainer, result = _run(digits, "cuda", augment)
    where = "cuda" if not augment else "cpu"  # augmentation runs on the host
    assert trainer.data.train.images.device.type == where and trainer.data.train.labels.device.type == where
    assert trainer.normalizer.scale.device.type == where
    assert trainer.data.val is not None and len(trainer.data.val) == 100
    assert next(trainer.model.parameters()).device.type == "cuda"
    assert cpu_trainer.data.train.images.device.type == "cpu"
    for ours, theirs in zip(result.history, cpu.history):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=2e-2)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=2e-2)
        assert abs(ours["val_accuracy"] - theirs["val_accuracy"]) <= 0.05
    assert result.probabilities["val"].shape == (100, 10)
