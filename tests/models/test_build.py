"""Built modules: structure, Keras defaults, errors before allocation, initialization, penalties."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models import MAX_TOTAL_PARAMS, build_model, core_module

from . import architectures as arch
from .architectures import CIFAR10, MNIST, layers, variant


def test_every_named_layer_is_one_child_and_nonlinear_layers_hold_their_activation_module():
    built = build_model(layers(arch.A2), CIFAR10, 10, variant({"batchnorm": {"position": "before_activation"}}))
    assert [name for name, _ in built.module.named_children()] == built.names == [
        "conv1", "batchnorm1", "activation1", "maxpool1", "flatten1", "dense1", "batchnorm2", "activation2",
        "dense2"]
    assert isinstance(built.module.conv1, nn.Conv2d)  # linear now: no activation inside
    assert isinstance(built.module.activation1, nn.ReLU)
    assert isinstance(built.module.dense2, nn.Linear)  # the classifier outputs logits
    plain = build_model(layers(arch.A2), CIFAR10, 10)
    assert [type(m) for m in plain.module.conv1] == [nn.Conv2d, nn.ReLU]
    assert [type(m) for m in plain.module.dense1] == [nn.Linear, nn.ReLU]
    assert all(not getattr(m, "inplace", False) for m in plain.module.modules())


def test_hooking_a_conv_layer_sees_its_post_activation_output():
    built = build_model(layers(arch.A1), CIFAR10, 10, generator_seed=0)
    seen = {}
    handle = built.module.conv2.register_forward_hook(lambda module, inputs, output: seen.update(out=output))
    try:
        logits = built.module(torch.randn(2, *CIFAR10))
    finally:
        handle.remove()
    assert seen["out"].shape == (2, 64, 8, 8) and (seen["out"] >= 0).all() and (seen["out"] == 0).any()
    assert logits.shape == (2, 10) and (logits < 0).any()


@pytest.mark.parametrize("name, module_type, check", [
    ("relu", nn.ReLU, None), ("elu", nn.ELU, lambda m: m.alpha == 1.0),
    ("leaky_relu", nn.LeakyReLU, lambda m: m.negative_slope == 0.2),
    ("gelu", nn.GELU, lambda m: m.approximate == "none"), ("tanh", nn.Tanh, None), ("sigmoid", nn.Sigmoid, None),
])
def test_activations_are_modules_with_keras_defaults(name, module_type, check):
    built = build_model(layers([{"conv": {"filters": 2, "activation": name}}, {"activation": name}, "flatten",
                                {"dense": {"units": 3, "activation": name}}, {"dense": 2}]), (1, 5, 5))
    for child in (built.module.conv1[-1], built.module.activation1, built.module.dense1[-1]):
        assert type(child) is module_type and (check is None or check(child))


def test_batchnorm_converts_keras_momentum_and_epsilon():
    built = build_model(layers([{"conv": 3}, {"batchnorm": {"momentum": 0.9, "epsilon": 0.01}}, "flatten",
                                "batchnorm", {"dense": 2}]), (1, 6, 6))
    norm2d, norm1d = built.module.batchnorm1, built.module.batchnorm2
    assert type(norm2d) is nn.BatchNorm2d and type(norm1d) is nn.BatchNorm1d
    assert norm2d.momentum == pytest.approx(0.1) and norm2d.eps == 0.01
    assert norm1d.momentum == pytest.approx(0.01) and norm1d.eps == 1e-3
    # Keras: moving_mean = momentum * moving_mean + (1 - momentum) * batch_mean.
    norm1d.train()
    x = torch.randn(16, 48) + 3.0
    norm1d(x)
    torch.testing.assert_close(norm1d.running_mean, 0.99 * torch.zeros(48) + 0.01 * x.mean(0))


def test_classifier_units_must_equal_the_number_of_classes():
    with pytest.raises(ModelError) as error:
        build_model(layers(arch.A2), CIFAR10, num_classes=100)
    assert "dense2" in str(error.value) and "10 units" in str(error.value) and "100 classes" in str(error.value)


def test_an_empty_output_names_the_layer_its_input_and_why():
    with pytest.raises(ModelError) as error:
        build_model(layers([{"conv": 4}, {"maxpool": 2}, {"conv": {"filters": 4, "kernel": 5}}, "flatten",
                            {"dense": 2}]), (1, 6, 6))
    message = str(error.value)
    assert "conv2" in message and "(4, 2, 2)" in message and "5x5" in message and "empty" in message


@pytest.mark.parametrize("items, words", [
    ([{"conv": 4}, {"dense": 2}], ["dense1", "flat input", "add flatten"]),
    (["flatten", {"maxpool": 2}, {"dense": 2}], ["maxpool1", "image input", "flatten1"]),
])
def test_layers_in_an_impossible_order_are_errors(items, words):
    with pytest.raises(ModelError) as error:
        build_model(layers(items), (1, 8, 8))
    assert all(word in str(error.value) for word in words)


def test_absurd_models_are_refused_before_allocation():
    started = time.perf_counter()
    with pytest.raises(ModelError) as error:  # 150,528 x 1,000,000 weight matrix
        build_model(layers(["flatten", {"dense": 10**6}, {"dense": 10}]), (3, 224, 224))
    assert "dense1" in str(error.value) and "150,528,000,000" in str(error.value)
    # Each kernel below the tensor limit, but together past the total.
    convs = [{"conv": {"filters": 30_000, **arch.SAME3}}, {"conv": {"filters": 3_000, **arch.SAME3}},
             {"conv": {"filters": 30_000, **arch.SAME3}}]
    with pytest.raises(ModelError) as error:
        build_model(layers(convs + ["flatten", {"dense": 10}]), (3_000, 8, 8))
    assert "conv3" in str(error.value) and f"{MAX_TOTAL_PARAMS:,}" in str(error.value)
    assert time.perf_counter() - started < 1.0


def test_bad_input_shape_and_init_are_errors():
    with pytest.raises(ModelError, match="channels, height, width"):
        build_model(layers(arch.A2), (32, 32), 10)
    with pytest.raises(ModelError, match="did you mean 'xavier'"):
        build_model(layers(arch.A2), CIFAR10, 10, init="xavir")


def test_layer_records_carry_shapes_geometry_and_penalties():
    built = build_model(layers(arch.A1), CIFAR10, 10, variant({"l2": {"factor": 0.01, "on": ["conv2"]}}))
    conv2 = built.info("conv2")
    assert (conv2.kind, conv2.keras_type, conv2.input_shape, conv2.output_shape) == ("conv", "Conv2D", (64, 16, 16),
                                                                                       (64, 8, 8))
    assert (conv2.kernel, conv2.stride, conv2.dilation, conv2.pad) == ((3, 3), (2, 2), (1, 1), (0, 1, 0, 1))
    assert (conv2.l1, conv2.l2, conv2.activation) == (0.0, 0.01, "relu")
    assert built.info("flatten1").kernel is None and built.classifier.name == "dense1"
    assert isinstance(built.core_module("conv2"), nn.Conv2d) and isinstance(core_module(built.module.conv2), nn.Conv2d)
    with pytest.raises(ModelError, match="did you mean 'conv[12]'"):
        built.info("conv3")


def test_output_shapes_recorded_equal_the_modules_output_shapes():
    for items, data, shape in ((arch.E, arch.E_DROPOUT, CIFAR10),
                               (arch.C_MNIST, {"batchnorm": {"position": "before_activation"}}, MNIST)):
        built = build_model(layers(items), shape, 10, variant(data))
        built.module.eval()
        x = torch.zeros(1, *shape)
        for info, child in zip(built.layers, built.module.children()):
            assert tuple(x.shape[1:]) == info.input_shape, info.name
            x = child(x)
            assert tuple(x.shape[1:]) == info.output_shape, info.name


# ---------------------------------------------------------------- initialization


def kernels(built):
    return [core_module(child).weight for child in built.module.children()
            if isinstance(core_module(child), (nn.Conv2d, nn.Linear))]


def biases(built):
    return [core_module(child).bias for child in built.module.children()
            if isinstance(core_module(child), (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("init", ["keras", "xavier", "he"])
def test_keras_like_inits_zero_the_biases_and_scale_the_kernels(init):
    built = build_model(layers(arch.A2), CIFAR10, 10, init=init, generator_seed=3)
    assert all((bias == 0).all() for bias in biases(built))
    weight = built.core_module("dense1").weight  # fan_in 14400, fan_out 100
    if init == "he":
        assert weight.std().item() == pytest.approx((2 / 14_400) ** 0.5, rel=0.02)
    else:
        limit = (6 / (14_400 + 100)) ** 0.5
        assert weight.abs().max().item() <= limit and weight.abs().max().item() > 0.99 * limit


def test_default_init_is_pytorchs():
    built = build_model(layers(arch.A2), CIFAR10, 10, generator_seed=3)
    assert any((bias != 0).any() for bias in biases(built))
    assert built.core_module("dense1").weight.abs().max().item() <= 1 / 14_400 ** 0.5


@pytest.mark.parametrize("init", ["default", "keras", "he"])
def test_a_generator_seed_makes_initialization_repeatable_without_touching_the_global_rng(init):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = build_model(layers(arch.A3), CIFAR10, 10, variant({"batchnorm": True}), init=init, generator_seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    second = build_model(layers(arch.A3), CIFAR10, 10, variant({"batchnorm": True}), init=init, generator_seed=7)
    other = build_model(layers(arch.A3), CIFAR10, 10, variant({"batchnorm": True}), init=init, generator_seed=8)
    one, two, three = (m.module.state_dict() for m in (first, second, other))
    assert all(torch.equal(one[key], two[key]) for key in one)
    assert not torch.equal(one["conv1.0.weight"], three["conv1.0.weight"])


# ---------------------------------------------------------------- penalties


def test_penalty_is_keras_kernel_regularizer_loss():
    built = build_model(layers(arch.A3), CIFAR10, 10,
                        variant({"l1": {"factor": 0.001, "on": ["dense"]}, "l2": {"factor": 0.01, "on": ["conv"]}}),
                        generator_seed=0)
    conv1, conv2 = built.core_module("conv1").weight, built.core_module("conv2").weight
    dense1, dense2 = built.core_module("dense1").weight, built.core_module("dense2").weight
    expected = 0.01 * ((conv1 ** 2).sum() + (conv2 ** 2).sum()) + 0.001 * (dense1.abs().sum() + dense2.abs().sum())
    penalty = built.penalty()
    torch.testing.assert_close(penalty, expected)
    penalty.backward()
    assert built.core_module("conv1").bias.grad is None  # biases are not penalized
    torch.testing.assert_close(conv1.grad, 0.02 * conv1)


def test_both_penalties_on_one_layer_add_up():
    built = build_model(layers(arch.A2), CIFAR10, 10, variant({"l1": 0.5, "l2": 0.25, "on": ["classifier"]}),
                        generator_seed=0)
    weight = built.core_module("dense2").weight
    torch.testing.assert_close(built.penalty(), 0.5 * weight.abs().sum() + 0.25 * weight.square().sum())


def test_penalty_is_zero_without_penalties():
    penalty = build_model(layers(arch.A2), CIFAR10, 10).penalty()
    assert penalty.shape == () and penalty.item() == 0.0 and not penalty.requires_grad


def test_penalty_follows_parameters_replaced_by_a_conversion():
    built = build_model(layers(arch.A2), CIFAR10, 10, variant({"l2": 0.1, "on": ["conv1"]}), generator_seed=0)
    previous = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)  # .to() makes new Parameter objects
    try:
        built.module.to(torch.float64)
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(previous)
    penalty = built.penalty()
    assert penalty.dtype == torch.float64
    torch.testing.assert_close(penalty, 0.1 * built.core_module("conv1").weight.square().sum())


def test_memory_estimate_refuses_what_cannot_fit_and_passes_study_e():
    from cnnlab.errors import ModelError
    from cnnlab.models import resolve_layers
    from cnnlab.models.memory import check_memory, training_bytes
    from cnnlab.models.shapes import check_shapes
    from tests.models.architectures import E, layers

    infos = check_shapes(resolve_layers(layers(E)), (3, 32, 32), 10)
    need = training_bytes(infos, 100, "adam")
    assert 6_216_114 * 4 * 4 < need < 2 * 2**30  # weights, grads, two Adam states, activations
    check_memory(infos, 100, "adam", available=8 * 2**30)
    with pytest.raises(ModelError, match="lower train.batch_size"):
        check_memory(infos, 100_000, "adam", available=8 * 2**30)
