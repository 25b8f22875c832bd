"""Settings given outside the spec file (``--epochs``, ``--precision``), validated exactly as
the spec is: the study is dumped, the dotted keys are set, and the whole document goes through
the same loader, so an override gets the spec's bounds and the spec's messages."""

from __future__ import annotations

from typing import Any, Mapping

from cnnlab.errors import SpecError
from cnnlab.spec.study import Study


def apply_overrides(study: Study, values: Mapping[str, Any], source: str = "the command line") -> Study:
    """The study with each dotted key (``train.epochs``) set to its value; a SpecError names
    ``source`` and the field as a spec error would."""
    if not values:
        return study
    from cnnlab.spec.loader import parse_study  # the loader imports the study models too

    data = study.model_dump(mode="json")
    for key, value in values.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise SpecError(f"{source}: '{key}' is not a setting of the spec ('{part}' holds no settings)")
            node = node[part]
        if last not in node:
            raise SpecError(f"{source}: '{key}' is not a setting of the spec")
        node[last] = value
    return parse_study(data, source)
