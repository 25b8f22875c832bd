"""A layer's neurons grouped by the class that excites them: study E's "interesting neurons ... the
image patches that excite each neuron most, one row per class".

The rule, which the figure states: a neuron (a channel of the layer) belongs to the class that
most of its top-k images of the split carry (their true labels); a tie goes to the lowest class
index. In a class's row its neurons are ordered by how many of their top-k images carry the
class (most first), then by their best activation (strongest first), then by channel; each is
shown by its strongest patch among its top-k images of that class. A neuron whose top-k
activations are all equal (dead on the split: no image excites it more than another, so its "top"
images are just the first ones) belongs to no class; the figure counts those apart.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from cnnlab.explain.activations import TopActivations


def class_rule(k: int) -> str:
    """The grouping rule in words, for the figure's caption."""
    return (f"a neuron belongs to the class that most of its top {k} images carry (their true labels; a tie goes "
            f"to the lowest class index); a neuron whose top {k} activations are all equal (dead) belongs to none")


@dataclass(frozen=True)
class ClassNeuron:
    """One neuron of a class's row: its row in the ``TopActivations``, its channel, how many of its
    top-k images carry the class, and the rank (0 = best) of the strongest of those."""

    row: int
    channel: int
    count: int
    rank: int


@dataclass(frozen=True)
class NeuronsByClass:
    """Per class (in class order), its neurons as shown (at most ``per_class``) and how many it has;
    ``flat``: the channels that belong to no class (all top-k activations equal)."""

    layer: str
    k: int
    rows: list[list[ClassNeuron]]
    totals: list[int]
    flat: list[int]


def neurons_by_class(top: TopActivations, labels: torch.Tensor | np.ndarray, class_count: int,
                     per_class: int) -> NeuronsByClass:
    """Group the channels of ``top`` by class (see the module doc); ``labels`` are the scanned split's."""
    carried = np.asarray(labels, dtype=np.int64)[np.asarray(top.image_index, dtype=np.int64)]  # channels x k
    counts = np.stack([(carried == c).sum(axis=1) for c in range(class_count)], axis=1)
    owner = counts.argmax(axis=1)  # numpy returns the first maximum: a tie goes to the lowest class
    best = top.values[:, 0].double().numpy()
    flat = (top.values[:, 0] == top.values[:, -1]).numpy()
    rows: list[list[ClassNeuron]] = []
    totals: list[int] = []
    for c in range(class_count):
        members = [int(row) for row in np.flatnonzero((owner == c) & ~flat)]
        members.sort(key=lambda row: (-int(counts[row, c]), -best[row], top.channels[row]))
        totals.append(len(members))
        rows.append([ClassNeuron(row, top.channels[row], int(counts[row, c]), int(np.flatnonzero(carried[row] == c)[0]))
                     for row in members[:per_class]])
    return NeuronsByClass(layer=top.layer, k=carried.shape[1], rows=rows, totals=totals,
                          flat=[top.channels[row] for row in np.flatnonzero(flat)])
