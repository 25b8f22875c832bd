"""Normalization (scale, shift) and batch augmentation."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ArrayDataset, augment_batch, normalization
from cnnlab.errors import DataError
from cnnlab.spec.study import Crop, Dataset, Translate


def images(n=64, c=3, h=8, w=8, seed=0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset(torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64))


def test_unit_and_none_scales():
    data = images()
    scale, shift = normalization("unit", data)
    assert scale.shape == shift.shape == (1, 3, 1, 1) and scale.dtype == torch.float32
    assert torch.allclose(scale, torch.full((1, 3, 1, 1), 1 / 255)) and not shift.any()
    scale, shift = normalization("none", data)
    assert torch.equal(scale, torch.ones(1, 3, 1, 1)) and not shift.any()


def test_standardize_uses_the_training_split_per_channel_statistics():
    data = images(n=200, c=3)
    data.images[:, 1] //= 4  # channels with different statistics
    scale, shift = normalization("standardize", data)
    x = data.images.double()
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(scale.flatten().double(), 1 / std, rtol=1e-5)
    assert torch.allclose(shift.flatten().double(), -mean / std, rtol=1e-5)
    normalized = data.images.float() * scale + shift
    assert torch.allclose(normalized.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normalized.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_standardize_keeps_a_constant_channel_finite():
    data = ArrayDataset(torch.full((4, 1, 2, 2), 7, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))
    scale, shift = normalization("standardize", data)
    assert torch.isfinite(scale).all() and torch.isfinite(shift).all()


def test_unknown_normalization_is_a_data_error():
    with pytest.raises(DataError, match="unknown normalize"):
        normalization("minmax", images())


def test_hflip_flips_exactly_the_images_the_generator_chose():
    x = images(n=256).images.float()
    out = augment_batch(x, ["hflip"], torch.Generator().manual_seed(3))
    chosen = torch.rand(256, generator=torch.Generator().manual_seed(3)) < 0.5
    assert torch.equal(out[chosen], x[chosen].flip(3)) and torch.equal(out[~chosen], x[~chosen])
    assert 64 < int(chosen.sum()) < 192


def test_crop_and_translate_keep_the_shape_and_only_shift_with_zero_fill():
    x = images(n=32, c=2, h=10, w=12).images.float() + 1  # no zeros in the input
    for item in (Crop(crop=3), Translate(translate=2), {"crop": 1}):
        out = augment_batch(x, [item], torch.Generator().manual_seed(0))
        assert out.shape == x.shape
        pad = 3 if isinstance(item, Crop) else 2 if isinstance(item, Translate) else 1
        for i in range(len(x)):  # each output is the input shifted by some (dy, dx), zero-filled
            padded = torch.nn.functional.pad(x[i], (pad, pad, pad, pad))
            assert any(torch.equal(out[i], padded[:, dy:dy + 10, dx:dx + 12])
                       for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_augmentation_is_deterministic_for_a_generator_seed_and_leaves_the_input_alone():
    x = images(n=16).images.float()
    before = x.clone()
    spec = Dataset(name="cifar10", augment=["hflip", {"crop": 4}, {"translate": 2}]).augment
    a = augment_batch(x, spec, torch.Generator().manual_seed(11))
    b = augment_batch(x, spec, torch.Generator().manual_seed(11))
    c = augment_batch(x, spec, torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(x, before)


def test_no_augmentation_returns_the_batch_and_unknown_items_are_refused():
    x = images(n=4).images.float()
    assert torch.equal(augment_batch(x, [], torch.Generator()), x)
    with pytest.raises(DataError, match="unknown augmentation"):
        augment_batch(x, ["rotate"], torch.Generator())
