"""Feature maps and the streaming top-k: right values, names checked, hooks and modes always restored."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.errors import ModelError
from cnnlab.explain import (
    feature_maps,
    guided_backprop,
    neuron_guided_backprop,
    neuron_saliency,
    saliency,
    top_activations,
)
from cnnlab.models import build_model
from cnnlab.train import Normalizer
from tests.models.architectures import layers

# Dropout and batch norm make train and eval mode give different outputs.
SMALL = [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
         {"conv": {"filters": 6, "kernel": 3}}, "flatten", {"dense": 8}, {"dense": 3}]
SMALL_VARIANT = {"dropout": 0.5, "batchnorm": True}
UNIT = Normalizer(torch.full((1, 1, 1, 1), 1 / 255), torch.zeros((1, 1, 1, 1)))


def _built(seed: int = 0):
    from cnnlab.spec.variant import Variant

    return build_model(layers(SMALL), (1, 12, 12), 3, variant=Variant.model_validate(SMALL_VARIANT),
                       generator_seed=seed)


def _data(count: int = 30, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 1, 12, 12), dtype=torch.uint8, generator=generator)
    return ArrayDataset(images, torch.zeros(count, dtype=torch.int64))


def _assert_clean(module: torch.nn.Module) -> None:
    for name, child in module.named_modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(child, hooks), f"{name or 'model'} kept {hooks}"


CALLS = {
    "feature_maps": lambda model, x: feature_maps(model, x, ["conv1", "maxpool1", "dense1"]),
    "top_activations": lambda model, x: top_activations(model, _data(), UNIT, "conv2", None, 3, 7),
    "saliency": lambda model, x: saliency(model, x, 1),
    "guided_backprop": lambda model, x: guided_backprop(model, x, [0, 2]),
    "neuron_guided_backprop": lambda model, x: neuron_guided_backprop(model, x, "conv2", 1),
    "neuron_saliency": lambda model, x: neuron_saliency(model, x, "conv1", 2, (3, 4)),
}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("call", list(CALLS))
def test_every_function_removes_its_hooks_and_restores_the_mode(call, training):
    built = _built()
    built.module.train(training)
    CALLS[call](built.module, torch.rand(2, 1, 12, 12))
    _assert_clean(built.module)
    assert all(m.training == training for m in built.module.modules())


@pytest.mark.parametrize("call", list(CALLS))
def test_hooks_and_mode_are_restored_when_the_model_fails(call):
    built = _built()
    built.module.train()
    wrong = torch.rand(2, 3, 12, 12)  # three channels into a one-channel model
    if call == "top_activations":
        with pytest.raises(RuntimeError):
            top_activations(built.module, ArrayDataset(torch.zeros((2, 3, 12, 12), dtype=torch.uint8),
                                                       torch.zeros(2, dtype=torch.int64)), UNIT, "conv2")
    else:
        with pytest.raises(RuntimeError):
            CALLS[call](built.module, wrong)
    _assert_clean(built.module)
    assert all(m.training for m in built.module.modules())


def test_feature_maps_are_the_eval_mode_outputs_of_the_named_layers():
    built = _built()
    built.module.train()
    x = torch.rand(2, 1, 12, 12)
    maps = feature_maps(built, x, ["conv1", "conv1.0", "conv2", "dense1"])
    assert [tuple(t.shape) for t in maps.values()] == [(2, 4, 12, 12), (2, 4, 12, 12), (2, 6, 4, 4), (2, 8)]
    modules = dict(built.module.named_children())
    with torch.no_grad():
        built.module.eval()
        conv1 = modules["conv1"](x)
    torch.testing.assert_close(maps["conv1"], conv1)
    assert (maps["conv1"] >= 0).all() and (maps["conv1.0"] < 0).any()  # after the ReLU / before it


def test_unknown_layer_names_get_a_did_you_mean():
    built = _built()
    with pytest.raises(ModelError, match=r"no layer 'cnov1' \(did you mean 'conv1'\?\); its layers are: conv1, "):
        feature_maps(built, torch.rand(1, 1, 12, 12), ["cnov1"])
    with pytest.raises(ModelError, match="did you mean 'maxpool1'"):
        top_activations(built, _data(), UNIT, "maxpol1")
    with pytest.raises(ModelError, match="did you mean 'conv2'"):
        neuron_guided_backprop(built, torch.rand(1, 1, 12, 12), "conv_2", 0)
    with pytest.raises(ModelError, match="did you mean 'dense1'"):
        built.info("dense_1")


def _full_top_k(model, data, layer, k):
    """The non-streaming reference: every activation of the split at once, then a stable sort."""
    with torch.no_grad():
        model.eval()
        outputs = {}
        handle = dict(model.named_children())[layer].register_forward_hook(lambda m, i, o: outputs.update(out=o))
        model(UNIT(data.images))
        handle.remove()
    maps = outputs["out"]  # N x C x H x W
    width = maps.shape[3]
    values, flat = maps.flatten(2).max(dim=2)  # N x C
    order = torch.sort(values.t(), dim=1, descending=True, stable=True).indices[:, :k]
    positions = torch.stack((flat // width, flat % width), dim=-1).transpose(0, 1)  # C x N x 2
    return values.t().gather(1, order), order, positions.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_streaming_top_k_equals_the_full_computation(batch_size):
    built = _built(seed=1)
    data = _data(50)
    # Duplicated images make exact ties: the lower index must win in both computations.
    images = torch.cat((data.images, data.images[:10]))
    data = ArrayDataset(images.contiguous(), torch.zeros(len(images), dtype=torch.int64))
    for layer in ("conv1", "maxpool1", "conv2"):
        streamed = top_activations(built, data, UNIT, layer, None, k=6, batch_size=batch_size)
        values, index, position = _full_top_k(built.module, data, layer, 6)
        torch.testing.assert_close(streamed.values, values)
        assert torch.equal(streamed.image_index, index)  # ties included: the lower index first
        assert torch.equal(streamed.position, position)


def test_top_activations_for_chosen_channels_and_bad_requests():
    built = _built()
    data = _data()
    everything = top_activations(built, data, UNIT, "conv2", None, k=3)
    chosen = top_activations(built, data, UNIT, "conv2", [5, 0], k=3)
    assert chosen.channels == [5, 0]
    torch.testing.assert_close(chosen.values, everything.values[[5, 0]])
    with pytest.raises(ModelError, match="channels 0 to 5"):
        top_activations(built, data, UNIT, "conv2", [6], k=3)
    with pytest.raises(ModelError, match="spatial output"):
        top_activations(built, data, UNIT, "dense1", None, k=3)
    assert top_activations(built, _data(2), UNIT, "conv1", None, k=5).values.shape == (4, 2)
