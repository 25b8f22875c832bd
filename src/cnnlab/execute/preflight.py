"""The study pre-flight: every configuration of a plan, and its data split, checked before the
first epoch, so bad input is one clear error (exit status 2) instead of N failed runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from cnnlab.errors import CnnlabError, ModelError
from cnnlab.models import check_model, resolve_layers
from cnnlab.data import known_shape
from cnnlab.spec.plan import RunConfig
from cnnlab.spec.study import Study

if TYPE_CHECKING:
    from cnnlab.data import DataCache


def model_problems(plan: Sequence[RunConfig], input_shape: Optional[Sequence[int]],
                   num_classes: Optional[int] = None) -> list[str]:
    """One line per distinct configuration that cannot be trained: variant, shapes (when the
    input shape is known) and memory. Nothing is allocated."""
    problems, seen = [], set()
    for config in plan:
        key = (config.architecture, config.variant, repr(config.sweep), config.train.batch_size,
               config.train.optimizer.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            if input_shape is None:  # the files decide the shape: check what needs none
                resolve_layers(config.layer_list(), config.variant_spec)
            else:
                check_model(config.layer_list(), config.variant_spec, input_shape, num_classes,
                            batch_size=config.train.batch_size, optimizer=config.train.optimizer.name)
        except CnnlabError as error:
            problems.append(f"{config.label}: {error}")
    return problems


def known_shape_problems(study: Study, plan: Sequence[RunConfig]) -> list[str]:
    """``model_problems`` against the dataset's shape when it is known without reading a file
    (``cnnlab spec``); otherwise only what needs no shape."""
    shape = known_shape(study.dataset)
    return model_problems(plan, *(shape if shape is not None else (None, None)))


def preflight(plan: Sequence[RunConfig], cache: "DataCache") -> None:
    """Cut the data split the plan trains on and check every configuration against it; raise
    one error naming every problem (a DataError for the split, a ModelError for models)."""
    if not plan:
        return
    splits, _ = cache.split(plan[0])  # a split the data cannot give is a DataError here, once
    problems = model_problems(plan, splits.input_shape, splits.num_classes)
    if problems:
        count = f"{len(problems)} configurations" if len(problems) > 1 else "1 configuration"
        raise ModelError(f"{count} of the study cannot be trained; nothing was trained:\n  " + "\n  ".join(problems))
