"""Every layer kind computes in the stacked layout what each member's own module computes.

Members are models of one layer list built with different seeds; the stacked forward must give
each member's logits and each member's parameter gradients, in training mode (batch statistics,
running statistics updated per member) and in inference mode, for every kind a spec can write."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import build_model
from cnnlab.models.variants import ResolvedLayer
from cnnlab.spec.layers import Layer
from cnnlab.train.stacked import MemberRandomness, StackedForward, unstackable
from cnnlab.train.stacked.forward import KINDS
from tests.models.architectures import layers

EVERY_KIND = layers([
    {"conv": {"filters": 6, "kernel": 3, "padding": "same", "activation": "leaky_relu"}},
    {"batchnorm": {}},
    {"maxpool": {"size": 3, "stride": 2, "padding": "same"}},       # not the 2x2 kernel; padded unevenly
    {"conv": {"filters": 5, "kernel": 2, "stride": 2, "padding": "same", "activation": "gelu"}},
    {"avgpool": {"size": 2, "stride": 1, "padding": "same"}},        # uneven 'same' padding: MeanPool2d
    {"conv": {"filters": 4, "kernel": 3, "dilation": 2, "padding": "same", "activation": "elu"}},
    {"activation": "tanh"},
    {"globalavgpool": {}},
    {"dense": {"units": 12, "activation": "sigmoid"}},
    {"batchnorm": {}},                                               # on vectors: BatchNorm1d
    {"dropout": 0.3},
    {"dense": {"units": 10}},
])
POOLED = layers([{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
                 {"conv": {"filters": 6, "kernel": 3}}, "flatten", {"dense": {"units": 7, "bias": False}},
                 {"dense": 10}])
FLAT = layers(["flatten", {"dense": {"units": 8, "activation": "relu"}}, {"dense": 10}])  # a first layer on images
SHAPE = (2, 12, 12)


def _members(items, seeds=(1, 2, 3)):
    return [build_model(items, SHAPE, 10, generator_seed=seed) for seed in seeds]


@pytest.mark.parametrize("items", [EVERY_KIND, POOLED, FLAT],
                         ids=["every-kind", "conv-pool-flatten-dense-without-bias-dense", "dense-first"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_the_stacked_forward_gives_each_members_outputs_gradients_and_statistics(items, training):
    alone, stacked = _members(items), _members(items)
    for built in alone + stacked:
        built.module.train(training)
    images = torch.randn(3, 8, *SHAPE, generator=torch.Generator().manual_seed(0))  # each member's own batch
    # Each member's dropout generator: the global generator's state a lone run of it would start from.
    states = [torch.Generator().manual_seed(seed).get_state() for seed in (11, 12, 13)]
    forward = StackedForward(stacked, MemberRandomness(list(states), torch.device("cpu")))
    logits = forward(forward.images(images.transpose(0, 1)), [0, 1, 2], training=training)
    assert logits.shape == (3, 8, 10)
    labels = torch.arange(8) % 10
    if training:
        sum(F.cross_entropy(logits[k], labels) for k in range(3)).backward()
    forward.flush()  # the running statistics go back to the members' modules
    for k, (lone, member) in enumerate(zip(alone, stacked)):
        torch.set_rng_state(states[k])
        expected = lone.module(images[k])
        torch.testing.assert_close(logits[k], expected, atol=1e-5, rtol=1e-5)
        if training:
            F.cross_entropy(expected, labels).backward()
            for (name, mine), theirs in zip(member.module.named_parameters(), lone.module.parameters()):
                torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-5, rtol=1e-4, msg=f"member {k}: {name}")
        for (name, mine), theirs in zip(member.module.named_buffers(), lone.module.buffers()):
            torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=1e-5, msg=f"member {k}: {name}")


def test_a_subset_of_members_runs_with_the_others_left_out():
    alone, stacked = _members(POOLED), _members(POOLED)
    images = torch.randn(2, 4, *SHAPE)
    forward = StackedForward(stacked, MemberRandomness([torch.get_rng_state()] * 3, torch.device("cpu")))
    with torch.no_grad():
        logits = forward(forward.images(images.transpose(0, 1)), [0, 2], training=False)
        for position, k in enumerate([0, 2]):
            torch.testing.assert_close(logits[position], alone[k].module.eval()(images[position]), atol=1e-5, rtol=1e-5)


NORMED = layers([{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"batchnorm": {}}, {"maxpool": 2},
                 "flatten", {"dense": 6}, {"batchnorm": {}}, {"dense": 10}])


def test_running_statistics_of_several_steps_reach_each_member_at_the_flush_as_alone():
    alone, stacked = _members(NORMED), _members(NORMED)
    forward = StackedForward(stacked, MemberRandomness([torch.get_rng_state()] * 3, torch.device("cpu")))
    batches = torch.randn(4, 3, 8, *SHAPE, generator=torch.Generator().manual_seed(5))  # (step, member, ...)
    untouched = [buffer.clone() for buffer in stacked[1].module.buffers()]
    with torch.no_grad():
        for step in range(3):  # members 0, 1, 2 together
            forward(forward.images(batches[step].transpose(0, 1)), [0, 1, 2], training=True)
        # Until the flush the members' own buffers are as they were: the stacked copies hold the steps.
        assert all(torch.equal(a, b) for a, b in zip(stacked[1].module.buffers(), untouched))
        # Another set of members hands the first set's statistics back before it starts.
        forward(forward.images(batches[3, [0, 2]].transpose(0, 1)), [0, 2], training=True)
        forward.flush()
        for k, built in enumerate(alone):
            built.module.train()
            for step in range(3 if k == 1 else 4):
                built.module(batches[step, k])
    for k, (lone, member) in enumerate(zip(alone, stacked)):
        for (name, mine), theirs in zip(member.module.named_buffers(), lone.module.buffers()):
            torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=1e-5, msg=f"member {k}: {name}")
    tracked = [int(b) for n, b in stacked[1].module.named_buffers() if n.endswith("num_batches_tracked")]
    assert tracked == [3, 3]


def test_every_layer_kind_a_spec_can_write_stacks_and_an_unknown_one_is_named():
    from cnnlab.spec.layers import LAYER_TYPES

    assert set(LAYER_TYPES) <= set(KINDS), set(LAYER_TYPES) - set(KINDS)

    class Warp(Layer):
        type = "warp"

    assert unstackable([ResolvedLayer("warp1", Warp())]) == "layer warp1 (warp) has no stacked form"
