"""What each executor task trains: one run, or the seeds of one configuration stacked.

The runs of a plan that differ only in their repeat (and so their seed) form a group; whether
a group trains as one stacked model is ``train.stacked.choose``'s answer for its model, device
and the stack mode (``cnnlab run --stack``, else the spec's ``train.stack``). Every executor
takes the same tasks: the local pool and Ray run a stacked group as one task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Optional

from cnnlab.data import DataCache
from cnnlab.errors import CnnlabError
from cnnlab.models import check_model
from cnnlab.spec.plan import RunConfig
from cnnlab.train.stacked import STACK_MODES, choose, unstackable

__all__ = ["STACK_MODES", "Task", "plan_tasks", "seeds_key"]


@dataclass
class Task:
    """Runs a worker trains in one go: one, or a stacked group (the seeds of one configuration)."""

    configs: list[RunConfig]

    @property
    def run_ids(self) -> list[str]:
        return [config.run_id for config in self.configs]

    @property
    def stacked(self) -> bool:
        return len(self.configs) > 1


def seeds_key(config: RunConfig) -> str:
    """What the seeds of one configuration share: everything but the repeat and its seed."""
    data = config.model_dump(mode="json")
    data.pop("repeat")
    data.pop("seed")
    return json.dumps(data, sort_keys=True, default=str)


def _device_type(config: RunConfig) -> str:
    if config.train.device == "cuda":
        return "cuda"
    if config.train.device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def plan_tasks(todo: list[RunConfig], cache: DataCache, mode: Optional[str] = None,
               message: Callable[[str], None] = lambda text: None) -> list[Task]:
    """The tasks that train ``todo``, in its order (a group where its first member was); ``mode``
    (auto, always, never) overrides each configuration's ``train.stack``. Says what it chose."""
    groups: dict[str, list[RunConfig]] = {}
    for config in todo:
        groups.setdefault(seeds_key(config), []).append(config)
    tasks: list[Task] = []
    stacked: list[str] = []
    apart: dict[str, list[str]] = {}
    for members in groups.values():
        choice = _choice(members, cache, mode or members[0].train.stack)
        if choice is not None and choice.stack:
            tasks.append(Task(members))
            stacked.append(members[0].label)
        else:
            tasks.extend(Task([config]) for config in members)
            if choice is not None and len(members) > 1:
                apart.setdefault(choice.reason, []).append(members[0].label)
    if stacked:
        message(f"Training the seeds of {_count(stacked)} as one stacked model each ({_names(stacked)}); "
                "--stack never trains them one by one")
    for reason, labels in apart.items():
        message(f"Training the seeds of {_count(labels)} one by one ({_names(labels)}: {reason})")
    return tasks


def _choice(members: list[RunConfig], cache: DataCache, mode: str):
    if len(members) < 2 or mode == "never":
        return choose(mode, len(members), 0.0, "cpu") if len(members) > 1 else None
    first = members[0]
    try:
        _, train = cache.split(first)
        checked = check_model(first.layer_list(), first.variant_spec, tuple(train.images.shape[1:]))
    except CnnlabError:
        return None  # the runs will say what is wrong, each in its own record
    step = checked.step_flops * min(first.train.batch_size, len(train))
    return choose(mode, len(members), step, _device_type(first), unstackable(checked.resolved))


def _count(labels: list[str]) -> str:
    return "1 configuration" if len(labels) == 1 else f"{len(labels)} configurations"


def _names(labels: list[str], most: int = 4) -> str:
    shown = ", ".join(labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")
