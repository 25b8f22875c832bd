"""Activations of named layers: feature maps for a few inputs, and a streaming top-k over a split.

Everything here takes a plain ``nn.Module`` (a ``BuiltModel`` is accepted too) and layer names:
the model's named children (``conv1``, ``maxpool1``, ...; a conv's output is after its
activation, as Keras shows it) or any dotted name of ``model.named_modules()`` (``conv1.0`` is
the conv before its ReLU). The model runs in eval mode; every hook is removed and the model's
train/eval mode restored in ``finally``, also when something fails.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from cnnlab.data import ArrayDataset
from cnnlab.errors import ModelError
from cnnlab.registry import did_you_mean


def plain_module(model: Any) -> nn.Module:
    """The ``nn.Module`` of a model or of a ``BuiltModel``."""
    module = getattr(model, "module", model)
    if not isinstance(module, nn.Module):
        raise ModelError(f"expected a torch module or a BuiltModel; got {type(model).__name__}")
    return module


def named_layer(model: Any, name: str) -> nn.Module:
    """The module called ``name``; a ModelError with a did-you-mean for an unknown name."""
    module = plain_module(model)
    modules = dict(module.named_modules())
    if name and name in modules:
        return modules[name]
    children = [child for child, _ in module.named_children()]
    raise ModelError(f"the model has no layer '{name}'{did_you_mean(name, children)}; its layers are: "
                     f"{', '.join(children)}")


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block (dropout off, batch-norm running statistics); the mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def recording(model: nn.Module, names: Sequence[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hooks that keep the latest output of each named layer; removed when the block ends."""
    layers = [(name, named_layer(model, name)) for name in names]  # every name checked before hooking
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            outputs[name] = output.detach() if detach else output
        return hook

    try:
        for name, layer in layers:
            handles.append(layer.register_forward_hook(keep(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def feature_maps(model: Any, x: torch.Tensor, layer_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The outputs of the named layers for input ``x`` (N x C x H x W, already normalized), in eval mode."""
    module = plain_module(model)
    with evaluating(module), recording(module, layer_names) as outputs, torch.no_grad():
        module(x.to(model_device(module)))
        return {name: outputs[name].cpu() for name in layer_names}


@dataclass(frozen=True)
class TopActivations:
    """For each channel, the k images of a split that excite it most, and where.

    ``values``, ``image_index`` (into the split) and ``position`` ((row, col) in the layer's
    output) have one row per channel, best first; ties keep the lower image index. An image
    appears at most once per channel, at its strongest position (the first in row-major
    order when several positions tie).
    """

    layer: str
    channels: list[int]
    values: torch.Tensor  # channels x k, float32
    image_index: torch.Tensor  # channels x k, int64
    position: torch.Tensor  # channels x k x 2, int64 (row, col)

    def rank(self, channel_row: int) -> list[tuple[float, int, int, int]]:
        """(value, image index, row, col) of one channel row, best first."""
        return [(float(v), int(i), int(p[0]), int(p[1])) for v, i, p in
                zip(self.values[channel_row], self.image_index[channel_row], self.position[channel_row])]


def top_activations(
    model: Any,
    data: ArrayDataset,
    normalizer: Callable[[torch.Tensor], torch.Tensor],
    layer: str,
    channels: Optional[Sequence[int]] = None,
    k: int = 9,
    batch_size: int = 256,
) -> TopActivations:
    """Scan ``data`` in batches and keep, per channel of ``layer``, the k strongest images and positions.

    Memory stays bounded by one batch of the layer's activations plus channels x k numbers,
    whatever the split's size: the running top-k is merged with each batch's per-image maxima.
    ``channels=None`` means every channel. ``normalizer`` maps uint8 images to the model's input.
    """
    module = plain_module(model)
    target = named_layer(module, layer)  # did-you-mean before any work
    if k < 1 or batch_size < 1:
        raise ModelError(f"top activations need k >= 1 and batch_size >= 1; got k={k}, batch_size={batch_size}")
    if len(data) == 0:
        raise ModelError(f"no images to scan for the top activations of {layer}")
    del target
    device = model_device(module)
    values = index = position = None
    chosen: Optional[torch.Tensor] = None
    # A Sequential needs to run only up to the layer (a deep net's dense head is most of the work).
    children = [name for name, _ in module.named_children()]
    runner = module[:children.index(layer) + 1] if isinstance(module, nn.Sequential) and layer in children else module
    with evaluating(module), recording(module, [layer]) as outputs, torch.no_grad():
        for begin in range(0, len(data), batch_size):
            images = data.images[begin:begin + batch_size]
            runner(normalizer(images).to(device))
            activation = outputs[layer]
            if activation.dim() != 4:
                raise ModelError(f"top activations need a layer with a spatial output (channels, height, width); "
                                 f"{layer} outputs {tuple(activation.shape[1:])}")
            if chosen is None:
                chosen = _channel_index(channels, activation.shape[1], layer)
            maps = activation.index_select(1, chosen.to(activation.device)).float().cpu()
            width = maps.shape[3]
            batch_values, flat = maps.flatten(2).max(dim=2)  # first maximum in row-major order
            batch_values, flat = batch_values.t(), flat.t()  # channels x batch
            batch_index = torch.arange(begin, begin + len(images)).expand_as(batch_values)
            batch_position = torch.stack((flat // width, flat % width), dim=-1)
            if values is None:
                values, index, position = batch_values, batch_index, batch_position
            else:
                values = torch.cat((values, batch_values), dim=1)
                index = torch.cat((index, batch_index), dim=1)
                position = torch.cat((position, batch_position), dim=1)
            # Running entries come first and carry lower image indices, so a stable sort keeps ties
            # in image order.
            order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
            values = values.gather(1, order)
            index = index.gather(1, order)
            position = position.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
    return TopActivations(layer=layer, channels=[int(c) for c in chosen], values=values.contiguous(),
                          image_index=index.contiguous(), position=position.contiguous())


def _channel_index(channels: Optional[Sequence[int]], count: int, layer: str) -> torch.Tensor:
    if channels is None:
        return torch.arange(count)
    picked = [int(c) for c in channels]
    bad = [c for c in picked if not 0 <= c < count]
    if bad or not picked:
        raise ModelError(f"{layer} has channels 0 to {count - 1}; asked for {bad or 'none'}")
    return torch.tensor(picked, dtype=torch.int64)
