"""Receptive fields against hand-computed values, and the trace-back proved by re-feeding the patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.errors import ModelError
from cnnlab.explain import crop, receptive_field, receptive_fields, top_activations
from cnnlab.models import build_model
from cnnlab.train import Normalizer
from tests.models.architectures import A1, A2, B2, CIFAR10, E, layers


def _table(items, input_shape=CIFAR10):
    built = build_model(layers(items), input_shape, 10)
    return [(f.name, f.size[0], f.jump[0], f.start[0], f.output_shape[1]) for f in receptive_fields(built.layers)]


# Hand computation, per axis, with ke the effective kernel and p the padding before:
#   size += (ke - 1) * jump;  start += ((ke - 1) / 2 - p) * jump;  jump *= stride
# (name, size, jump, start, output height) for 32x32 inputs.

def test_study_a2_valid_conv_then_pool():
    assert _table(A2) == [
        ("conv1", 3, 1, 1.0, 30),      # 3x3 valid: centre of unit 0 is input pixel 1
        ("maxpool1", 4, 2, 1.5, 15),   # 3 + 1*1; start 1 + 0.5*1
    ]


def test_study_b2_three_valid_blocks():
    assert _table(B2) == [
        ("conv1", 3, 1, 1.0, 30),
        ("maxpool1", 4, 2, 1.5, 15),
        ("conv2", 8, 2, 3.5, 13),      # 4 + 2*2; 1.5 + 1*2
        ("maxpool2", 10, 4, 4.5, 6),   # 8 + 1*2; 3.5 + 0.5*2
        ("conv3", 18, 4, 8.5, 4),      # 10 + 2*4; 4.5 + 1*4
        ("maxpool3", 22, 8, 10.5, 2),  # 18 + 1*4; 8.5 + 0.5*4
    ]


def test_study_e_same_padding_keeps_unit_zero_on_pixel_zero():
    assert _table(E) == [
        ("conv1", 3, 1, 0.0, 32),      # 'same' pads 1: start 0 + (1 - 1)*1
        ("maxpool1", 4, 2, 0.5, 16),
        ("conv2", 8, 2, 0.5, 16),      # 4 + 2*2; 0.5 + (1 - 1)*2
        ("maxpool2", 10, 4, 1.5, 8),
        ("conv3", 18, 4, 1.5, 8),
        ("conv4", 26, 4, 1.5, 8),
        ("maxpool3", 30, 8, 3.5, 4),
    ]


def test_study_a1_strided_same_conv_pads_only_after():
    # conv2 is 3x3, stride 2, 'same' on 16x16: Keras pads 0 before and 1 after.
    built = build_model(layers(A1), CIFAR10, 10)
    assert built.info("conv2").pad == (0, 1, 0, 1)
    assert _table(A1) == [
        ("conv1", 3, 1, 0.0, 32),
        ("maxpool1", 4, 2, 0.5, 16),
        ("conv2", 8, 4, 2.5, 8),       # 4 + 2*2; 0.5 + (1 - 0)*2; jump 2*2
        ("maxpool2", 12, 8, 4.5, 4),   # 8 + 1*4; 2.5 + 0.5*4
    ]


def test_dilation_stride_and_rectangular_kernels_per_axis():
    items = [{"conv": {"filters": 2, "kernel": [3, 5], "dilation": [2, 1], "stride": [1, 2]}},
             {"maxpool": {"size": [2, 3], "stride": [2, 1]}}]
    built = build_model(layers(items + ["flatten", {"dense": 10}]), (1, 20, 21), 10)
    conv, pool = receptive_fields(built.layers)
    # rows: ke = 5 -> size 5, start 2, jump 1; then pool 2 stride 2 -> size 6, start 2.5, jump 2
    # cols: ke = 5, stride 2 -> size 5, start 2, jump 2; then pool 3 stride 1 -> size 9, start 4, jump 2
    assert (conv.size, conv.jump, conv.start) == ((5, 5), (1, 2), (2.0, 2.0))
    assert (pool.size, pool.jump, pool.start) == ((6, 9), (2, 2), (2.5, 4.0))


def test_boxes_at_the_border_are_clipped_and_padded_with_the_neutral_value():
    built = build_model(layers(E), CIFAR10, 10)
    field = receptive_field(built.layers, "conv4")
    assert field.box(0, 0) == (-11, -11, 15, 15)     # 1.5 - 12.5 .. 1.5 + 12.5
    assert field.box(7, 7) == (17, 17, 43, 43)       # 1.5 + 7*4 - 12.5
    image = np.arange(3 * 32 * 32, dtype=np.uint8).reshape(3, 32, 32)
    corner = crop(image, field, 0, 0)
    assert corner.clipped == (11, 0, 11, 0)
    assert corner.pixels.shape == (3, 15, 15)
    np.testing.assert_array_equal(corner.pixels, image[:, :15, :15])
    padded = corner.padded(128)
    assert padded.shape == (3, 26, 26)
    assert (padded[:, :11] == 128).all() and (padded[:, :, :11] == 128).all()
    np.testing.assert_array_equal(padded[:, 11:, 11:], image[:, :15, :15])
    assert crop(image, field, 7, 7).clipped == (0, 11, 0, 11)


def test_unknown_and_flat_layers_are_refused_with_names():
    built = build_model(layers(A2), CIFAR10, 10)
    with pytest.raises(ModelError, match="did you mean 'conv1'"):
        receptive_field(built.layers, "conv2")
    with pytest.raises(ModelError, match="no spatial output"):
        receptive_field(built.layers, "dense1")


# A model without padding, with a stride and a dilation: the receptive field of conv3 is
# exactly what conv3 sees, so feeding only the traced patch must give back the same activation.
VALID = [{"conv": {"filters": 4, "kernel": 3}}, {"maxpool": 2},
         {"conv": {"filters": 6, "kernel": 3, "stride": 2}},
         {"conv": {"filters": 5, "kernel": 3, "dilation": 2}}, "flatten", {"dense": 10}]


@pytest.mark.parametrize("layer", ["conv1", "maxpool1", "conv2", "conv3"])
def test_feeding_only_the_traced_patch_reproduces_the_top_activation(layer):
    built = build_model(layers(VALID), (3, 40, 40), 10, generator_seed=3)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 40, 40), dtype=torch.uint8, generator=generator)
    data = ArrayDataset(images, torch.zeros(40, dtype=torch.int64))
    normalizer = Normalizer(torch.full((1, 3, 1, 1), 1 / 255), torch.full((1, 3, 1, 1), -0.5))
    top = top_activations(built, data, normalizer, layer, channels=None, k=4, batch_size=16)
    field = receptive_field(built.layers, layer)
    names = built.names
    upto = torch.nn.Sequential(*[getattr(built.module, n) for n in names[:names.index(layer) + 1]]).eval()
    positions = set()
    for row, channel in enumerate(top.channels):
        for value, image, r, c in top.rank(row):
            patch = crop(images[image].numpy(), field, r, c)
            assert patch.clipped == (0, 0, 0, 0) and patch.pixels.shape[1:] == field.size
            with torch.no_grad():
                out = upto(normalizer(torch.from_numpy(patch.pixels)[None]))
            assert out.shape[2:] == (1, 1)
            assert out[0, channel, 0, 0].item() == pytest.approx(value, rel=1e-5, abs=1e-5)
            positions.add((r, c))
    assert len(positions) > 1  # the check covered units away from the top-left corner
