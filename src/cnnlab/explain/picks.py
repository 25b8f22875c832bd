"""Which layer an explain setting means for one run: the one resolver of layer picks.

A pick is a layer name (``conv1``, ``batchnorm1``: the names ``cnnlab summary`` shows), a 1-based
position in the layer list the run really built (inserted batch norm and dropout counted; -1 is
the last layer; ``"3"`` from the command line is a position too, as no layer is named by digits),
or a mapping from architecture name to such picks. Positions and mappings let one study-level
setting fit whichever architecture wins: study A's "the first four layers" is ``[1, 2, 3, 4]``
whether A1 or A3 is selected.

Names come back as they were asked, and are checked where they are used, with the did-you-mean
they always had. A position out of range, a mapping without the run's architecture, or a
position that picks a layer the figure cannot use (filters of a pooling layer) is a
``LayerPickError`` that says what was asked and which layers the model has; ``resolve_layers``
collects those as notes, so the picks that do fit are still drawn.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional, Sequence

from cnnlab.errors import ModelError

_POSITION = re.compile(r"[+-]?\d+")

# What a figure needs of a layer: its words, and the test on a built layer's record.
NEEDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "conv": ("filters exist for conv layers only", lambda info: info.kind == "conv"),
    "spatial": ("neurons are found in layers with a spatial output (conv, pooling, batch norm after a conv) only",
                lambda info: len(info.output_shape) == 3),
}


class LayerPickError(ModelError):
    """A layer pick this run's model cannot honour; the message is the note a figure or report shows."""


def _model_words(run: Any) -> str:
    label = getattr(run.config, "label", None) or run.config.architecture
    return f"the {label} model"


def layer_positions(run: Any, need: Optional[str] = None) -> str:
    """``1 conv1, 2 maxpool1, ...``: the run's layers by position (only those ``need`` allows)."""
    test = NEEDS[need][1] if need else (lambda info: True)
    return ", ".join(f"{i} {info.name}" for i, info in enumerate(run.built.layers, 1) if test(info)) or "none"


def for_architecture(run: Any, picks: Any, setting: str) -> Any:
    """The picks meant for the run's architecture: a mapping's entry for it, else the picks as they are."""
    if not isinstance(picks, Mapping):
        return picks
    architecture = run.config.architecture
    if architecture in picks:
        return picks[architecture]
    raise LayerPickError(
        f"{setting} names layers for {', '.join(map(str, picks))} but not for {architecture}, the architecture of "
        f"this run; {_model_words(run)} has {len(run.built.layers)} layers: {layer_positions(run)}")


def _position(pick: Any) -> Optional[int]:
    if isinstance(pick, bool):
        return None
    if isinstance(pick, int):
        return pick
    text = str(pick).strip()
    return int(text) if _POSITION.fullmatch(text) else None


def resolve_layer(run: Any, pick: Any, setting: str = "layer", need: Optional[str] = None) -> str:
    """The name of the layer ``pick`` means in ``run`` (an ``ExplainedRun``: its built model and config).

    ``setting`` names where the pick came from (``explain.filters``), for the message; ``need``
    (``conv``, ``spatial``) is what the figure requires of a layer picked by position.
    """
    pick = for_architecture(run, pick, setting)
    position = _position(pick)
    if position is None:
        return str(pick)  # a name: checked where it is used, as it always was
    layers = run.built.layers
    if position == 0 or not -len(layers) <= position <= len(layers):
        raise LayerPickError(
            f"{setting} asks for layer position {position}, but {_model_words(run)} has {len(layers)} layers "
            f"(1 to {len(layers)}, or -1 for the last): {layer_positions(run)}")
    info = layers[position - 1 if position > 0 else position]
    if need is not None and not NEEDS[need][1](info):
        raise LayerPickError(
            f"{setting} asks for layer position {position}, which is {info.name} in {_model_words(run)}, a "
            f"{info.kind} layer; {NEEDS[need][0]}: {layer_positions(run, need)}")
    return info.name


def resolve_layers(run: Any, picks: Any, setting: str, need: Optional[str] = None) -> tuple[list[str], list[str]]:
    """The layer names a list of picks (or a mapping architecture -> list) means in ``run``, each once,
    in the order asked, and a note for each pick that does not fit the run's model."""
    try:
        chosen: Sequence[Any] = for_architecture(run, picks, setting)
    except LayerPickError as error:
        return [], [str(error)]
    if not chosen:
        return [], [f"{setting} lists no layer for {_model_words(run)}; its layers: {layer_positions(run)}"]
    names: list[str] = []
    notes: list[str] = []
    for pick in chosen:
        try:
            name = resolve_layer(run, pick, setting, need)
        except LayerPickError as error:
            notes.append(str(error))
            continue
        if name not in names:
            names.append(name)
    return names, notes
