"""The forward pass of S members of one configuration at once, each with its own weights.

Each member keeps its own model (its own parameters and optimizer, exactly as a lone run has
them); a step stacks their parameters afresh (``torch.cat``/``torch.stack``, whose backward hands
each member the gradient of its own slice) and runs every layer once for all of them:

- images travel as ``(B, S*C, H, W)``, member ``i`` in channels ``i*C:(i+1)*C``: a convolution is
  one grouped convolution (``groups=S``), and what acts per channel (activations, pooling, padding,
  batch norm) runs unchanged on all members at once;
- vectors travel as ``(S, B, F)``: a dense layer is one batched matrix product (``baddbmm``);
- flatten turns the first into the second in Keras' height-width-channel order. (Measured and
  dropped: vectors feature-major, or dense layers as ``W @ x^T``, to spare the transposing copy of
  each dense weight's gradient: 2-4% slower a study C step in ``benchmarks/stacked.py``, the
  flatten's copy then running with the batch innermost);
- dropout draws each member's mask from that member's own generator state, with the very call a
  lone run makes on a tensor of the same shape, so its masks are the lone run's masks.

Nothing mixes members: every op is per channel, per group or per batch item, so a member's loss
and gradients are its own (a member that diverges cannot spoil the others). Where this pays and
where it does not is the policy's (``policy.py``); this module only computes.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from cnnlab.models.build import BuiltModel
from cnnlab.models.layers import core_module
from cnnlab.models.variants import ResolvedLayer
from cnnlab.train.device import autocast_enabled
from cnnlab.train.fast import max_pool

# Elementwise activation modules (the in-place ReLU stands for nn.ReLU).
_ELEMENTWISE = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity)
# Non-decreasing ones commute with max pooling (GELU is not monotonic).
_MONOTONIC = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity)
KINDS = ("conv", "dense", "maxpool", "avgpool", "globalavgpool", "flatten", "dropout", "batchnorm", "activation")


def unstackable(resolved: Sequence[ResolvedLayer]) -> Optional[str]:
    """Why members of a model of these resolved layers cannot train stacked, or None when they can."""
    for item in resolved:
        if item.kind not in KINDS:
            return f"layer {item.name} ({item.kind}) has no stacked form"
    return None


class MemberRandomness:
    """Each member's state of the generator its dropout draws from: the state of the global
    generator that a lone run of that member would have (a lone run's dropout draws from it)."""

    def __init__(self, states: list[torch.Tensor], device: torch.device):
        self.states = states
        self.cuda = device.type == "cuda"
        self.device = device

    def _get(self) -> torch.Tensor:
        return torch.cuda.get_rng_state(self.device) if self.cuda else torch.get_rng_state()

    def _set(self, state: torch.Tensor) -> None:
        if self.cuda:
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def each(self, members: Sequence[int], draw: Callable[[int], torch.Tensor]) -> list[torch.Tensor]:
        """``draw(i)`` for each member, each under its own generator state (the global one restored after)."""
        outer = self._get()
        try:
            out = []
            for i in members:
                self._set(self.states[i])
                out.append(draw(i))
                self.states[i] = self._get()
            return out
        finally:
            self._set(outer)


def _conv_of(module: nn.Module) -> nn.Conv2d:
    return core_module(module)


def _parts(module: nn.Module) -> list[nn.Module]:
    return list(module) if isinstance(module, nn.Sequential) else [module]


class StackedForward:
    """The function of S built models (of one resolved layer list) on stacked inputs."""

    def __init__(self, builts: Sequence[BuiltModel], randomness: MemberRandomness):
        reason = unstackable(builts[0].resolved)
        if reason:
            raise ValueError(reason)
        self.builts = list(builts)
        self.items = builts[0].resolved
        self.randomness = randomness
        self.modules = [list(built.module) for built in builts]
        # Batch norm's running statistics of the members training now, stacked, per layer index:
        # (members, mean, var, steps). Kept across steps and handed back to the members by
        # ``flush``, not after every step (measured: 4% of a stacked step of the quickstart's
        # deeper net with batch norm went to stacking and splitting them again).
        self._running: dict[int, tuple[tuple[int, ...], torch.Tensor, torch.Tensor, int]] = {}

    # ------------------------------------------------------------ inputs

    def images(self, per_member: torch.Tensor) -> torch.Tensor:
        """``(B, S, C, H, W)`` (or already ``(B, S*C, H, W)``) -> the stacked image layout
        ``(B, S*C, H, W)``, channels-last."""
        if per_member.dim() == 5:
            b, s, c, h, w = per_member.shape
            per_member = per_member.reshape(b, s * c, h, w)
        return per_member.contiguous(memory_format=torch.channels_last)

    # ------------------------------------------------------------ forward

    def __call__(self, x: torch.Tensor, members: Sequence[int], training: bool) -> torch.Tensor:
        """``x``: stacked images of ``members`` (indices into the built models); the logits
        ``(S, B, classes)``, one slice per member in the order given."""
        count = len(members)
        deferred: Optional[nn.Module] = None  # an activation moved past the max pooling that follows it
        for index, item in enumerate(self.items):
            mods = [self.modules[i][index] for i in members]
            kind = item.kind
            if kind == "conv":
                following = self.items[index + 1].kind if index + 1 < len(self.items) else None
                last = _parts(mods[0])[-1]
                if following == "maxpool" and isinstance(last, _MONOTONIC):
                    # max(act(x)) == act(max(x)): the activation runs on a quarter of the values, as the
                    # lone run's fast path does (train/fast/forward.py)
                    x, deferred = self._conv(x, mods, count, activate=False), last
                    continue
                x = self._conv(x, mods, count)
            elif kind == "dense":
                x = self._dense(x, mods, count)
            elif kind == "flatten":
                x = _flatten(x, count)
            elif kind == "globalavgpool":
                b, sc = x.shape[:2]
                x = x.mean(dim=(2, 3)).view(b, count, sc // count).transpose(0, 1)
            elif kind == "dropout":
                if training and mods[0].p > 0:
                    x = self._dropout(x, mods[0].p, members, count)
            elif kind == "batchnorm":
                x = self._batch_norm(x, mods, count, training, index, members)
            elif kind == "maxpool" and isinstance(mods[0], nn.MaxPool2d) and max_pool.applies(
                    x, _first(mods[0].kernel_size), _first(mods[0].stride), _first(mods[0].padding)) and \
                    _square(mods[0]) and max_pool.pays(x):
                x = max_pool.max_pool_2x2(x)
                if deferred is not None:
                    x, deferred = _activation(deferred)(x), None
            else:  # pooling, padding, activation: per channel or per value, all members at once
                for part in _parts(mods[0]):
                    x = part(x)
                if deferred is not None:
                    x, deferred = _activation(deferred)(x), None
        return x

    def _conv(self, x: torch.Tensor, mods: list[nn.Module], count: int, activate: bool = True) -> torch.Tensor:
        convs = [_conv_of(m) for m in mods]
        first = convs[0]
        for part in _parts(mods[0]):
            if isinstance(part, (nn.ZeroPad2d, nn.ConstantPad2d)):
                x = part(x)
        weight = torch.cat([c.weight for c in convs])
        bias = torch.cat([c.bias for c in convs]) if first.bias is not None else None
        x = F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, groups=count)
        return _activate(x, mods[0]) if activate else x

    def _dense(self, x: torch.Tensor, mods: list[nn.Module], count: int) -> torch.Tensor:
        linears = [core_module(m) for m in mods]
        weight = torch.stack([m.weight for m in linears])  # (S, out, in)
        bias = torch.stack([m.bias for m in linears]) if linears[0].bias is not None else None
        if autocast_enabled(x.device.type):  # autocast's casts stay autograd's
            x = _linear(x, weight, bias)
        else:
            x = _StackedLinear.apply(x, weight, bias)
        return _activate(x, mods[0])

    def _dropout(self, x: torch.Tensor, p: float, members: Sequence[int], count: int) -> torch.Tensor:
        slot = {member: position for position, member in enumerate(members)}
        # The mask is drawn in the memory order of the tensor it is for: each member's part is laid out
        # as the lone run's is (channels-last images, batch-major vectors), so its draws land where
        # the lone run's do.
        if x.dim() == 4:
            c = x.shape[1] // count
            parts = self.randomness.each(members, lambda i: F.dropout(
                x[:, slot[i] * c:(slot[i] + 1) * c].contiguous(memory_format=torch.channels_last), p, True))
            return torch.cat(parts, dim=1).contiguous(memory_format=torch.channels_last)
        return torch.stack(self.randomness.each(members, lambda i: F.dropout(x[slot[i]].contiguous(), p, True)))

    def _batch_norm(self, x: torch.Tensor, mods: list[nn.Module], count: int, training: bool, index: int,
                    members: Sequence[int]) -> torch.Tensor:
        norms = [core_module(m) for m in mods]
        first = norms[0]
        key = tuple(members)
        held = self._running.get(index)
        if held is not None and held[0] != key:  # another set of members: theirs go back first
            self.flush()
            held = None
        if held is not None:
            mean, var = held[1], held[2]
        else:
            mean = torch.cat([n.running_mean for n in norms])
            var = torch.cat([n.running_var for n in norms])
        weight = torch.cat([n.weight for n in norms]) if first.affine else None
        bias = torch.cat([n.bias for n in norms]) if first.affine else None
        if x.dim() == 4:
            out = F.batch_norm(x, mean, var, weight, bias, training, first.momentum, first.eps)
        else:  # (S, B, F) -> (B, S*F): each member's feature is a channel of its own
            s, b, f = x.shape
            flat = x.transpose(0, 1).reshape(b, s * f)
            out = F.batch_norm(flat, mean, var, weight, bias, training, first.momentum, first.eps)
            out = out.view(b, s, f).transpose(0, 1)
        if training:  # the stacked copies were updated in place: the members get them at the flush
            self._running[index] = (key, mean, var, (held[3] if held is not None else 0) + 1)
        return out

    def flush(self) -> None:
        """Hand the batch-norm running statistics updated since the last flush back to their
        members' modules. The trainer flushes at the end of every training epoch, before anything
        reads a member's buffers (evaluation, checkpoints, the member's own finish)."""
        with torch.no_grad():
            for index, (members, mean, var, steps) in self._running.items():
                norms = [core_module(self.modules[i][index]) for i in members]
                width = norms[0].num_features
                torch._foreach_copy_([n.running_mean for n in norms], list(mean.split(width)))
                torch._foreach_copy_([n.running_var for n in norms], list(var.split(width)))
                torch._foreach_add_([n.num_batches_tracked for n in norms], steps)
        self._running.clear()


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``x @ weight^T + bias`` per member: ``x`` ``(S, B, in)``, ``weight`` ``(S, out, in)``, ``bias`` ``(S, out)``."""
    transposed = weight.transpose(1, 2)
    return torch.baddbmm(bias.unsqueeze(1), x, transposed) if bias is not None else torch.bmm(x, transposed)


class _StackedLinear(torch.autograd.Function):
    """``_linear`` with its own backward. Autograd's own backward of ``bmm(x, weight.transpose(1, 2))``
    yields the weight gradient transposed, and each member's slice of it was then copied into a
    contiguous ``.grad``: 3 of study C's ``784 x 64`` copies a step. Here the weight gradient is
    computed in the weight's own layout (``grad^T @ x``); measured on study C's first dense layer,
    3 members, one thread, a forward and backward went from 560 to 440 us. (``fast/dense._Dense``
    has the same shape for one 2-D layer through oneDNN's private matmul; batched, this is bmm.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _first(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


def _square(module: nn.MaxPool2d) -> bool:
    pairs = [module.kernel_size, module.stride, module.padding, module.dilation]
    return all(not isinstance(v, (tuple, list)) or len(set(v)) == 1 for v in pairs) and \
        _first(module.dilation) == 1 and not module.ceil_mode


def _activation(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """An activation module's function; ReLU in place (the layer before it saves nothing it overwrites)."""
    return torch.relu_ if isinstance(module, nn.ReLU) else module


def _activate(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """A conv or dense layer's activation (the last of its modules, when it has one) on its output."""
    last = _parts(module)[-1]
    return _activation(last)(x) if isinstance(last, _ELEMENTWISE) else x


def _flatten(x: torch.Tensor, count: int) -> torch.Tensor:
    """``(B, S*C, H, W)`` -> ``(S, B, H*W*C)``, each member's values in Keras' order."""
    if x.dim() == 3:
        return x
    b, sc, h, w = x.shape
    c = sc // count
    return x.permute(0, 2, 3, 1).reshape(b, h * w, count, c).permute(2, 0, 1, 3).reshape(count, b, h * w * c)

