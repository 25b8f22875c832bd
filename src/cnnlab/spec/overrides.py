"""Settings given outside the spec file (``cnnlab run SPEC KEY=VALUE ...``, ``--epochs``,
``--precision``), validated exactly as the spec is: the study is dumped, each key is set, and the
whole document goes through the same loader, so an override gets the spec's bounds and messages,
and the runs get the ids an edit of the file would give them.

A key is a setting's path as the spec's own errors print it: names joined by dots, a list's item
by its position from 0 in brackets::

    train.optimizer.lr=0.01               a setting of the study
    variants.l2.l2=1e-4                   a setting inside a mapping the spec names (variant l2)
    architectures.A1[0].conv.filters=64   the first layer of architecture A1
    sweep.conv.kernel=[3, 5]              sweep keys hold dots themselves: the longest key that exists is meant
    variants.bn={batchnorm: true}         a new variant, architecture or sweep key: its whole value

A value is YAML, read by the spec's loader (``1e-4`` is a number, ``on`` is text, ``[3, 5]`` and
``{rate: 0.3}`` are flow collections; an empty value is null). Settings the spec leaves unset (null)
can be reached into: ``train.early_stopping.patience=3`` writes ``early_stopping: {patience: 3}``.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Mapping, Optional, Sequence, Union

import yaml

from cnnlab.errors import SpecError
from cnnlab.registry import did_you_mean
from cnnlab.spec.base import short_repr
from cnnlab.spec.study import Study

SOURCE = "the command line"
# The mappings whose keys the user names: an override may add a key to them (a new variant), to
# no other mapping, where a key that is not there is a typo.
NAMED_BY_USER = ("architectures", "variants", "sweep")

Part = Union[str, int]
_PATH = re.compile(r"[^.\[\]=]+(?:\[\d+\])*(?:\.[^.\[\]=]+(?:\[\d+\])*)*")  # names may hold spaces
_PARTS = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_DOCUMENT_END = "\n...\n"  # PyYAML ends a lone scalar's document with this marker


def parse_overrides(words: Sequence[str], source: str = SOURCE) -> dict[str, Any]:
    """``KEY=VALUE`` words as ``{key: value}``, each value read as YAML by the spec's loader."""
    from cnnlab.spec.loader import read_yaml  # the loader imports the study models too

    values: dict[str, Any] = {}
    for word in words:
        key, equals, text = word.partition("=")
        if not equals or not key.strip():
            raise SpecError(f"{source}: {word!r} is not a setting: write KEY=VALUE, a setting's dotted path in the "
                            "spec and its value in YAML (train.optimizer.lr=0.01, variants.l2.l2=1e-4)")
        key = key.strip()
        if key in values:
            raise SpecError(f"{source}: {key} is set twice ({override_word(key, values[key])} and {word}); "
                            "give each setting once")
        named = f"{source} ({word})"
        try:
            values[key], _ = read_yaml(text, named)
        except SpecError as error:  # a line number says nothing in a one-line value
            raise SpecError(str(error).replace(f"{named}:1: ", f"{named}: ", 1)) from None
    return values


def override_word(key: str, value: Any) -> str:
    """``key=value`` as the command line takes it (the value as compact YAML), to name and to store."""
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
    except yaml.YAMLError:  # a Python value no YAML writes (a tuple, a path) given to the API: validation names it
        return f"{key}={short_repr(value)}"
    return f"{key}={text.removesuffix(_DOCUMENT_END).strip()}"


def override_words(values: Optional[Mapping[str, Any]]) -> list[str]:
    """Each override as ``key=value``, in order: what the store keeps and the report shows."""
    return [override_word(key, value) for key, value in (values or {}).items()]


def apply_overrides(study: Study, values: Optional[Mapping[str, Any]], source: Optional[str] = None) -> Study:
    """The study with each key set to its value, validated as the spec is. A bad override is one
    SpecError that names it (``the command line (train.optimizer.lr=-1): train.optimizer.lr:
    expected greater than 0; found -1``); ``source`` names them all instead (``--epochs 3``)."""
    if not values:
        return study
    from cnnlab.spec.loader import parse_study

    spec = study.model_dump(mode="json")
    named = {key: f"{SOURCE} ({override_word(key, value)})" for key, value in values.items()}
    together = source or f"{SOURCE} ({' '.join(override_words(values))})"
    data = copy.deepcopy(spec)
    for key, value in values.items():
        _set(data, key, copy.deepcopy(value), source or named[key])
    try:
        return parse_study(data, together)
    except SpecError as error:
        problem = error
    if source is None and len(values) > 1:
        # Validated together, so that settings that only make sense together can be changed
        # together; the error names the override at fault where one alone is.
        for key, value in values.items():
            alone = copy.deepcopy(spec)
            _set(alone, key, copy.deepcopy(value), named[key])
            try:
                parse_study(alone, named[key])
            except SpecError as error:
                raise SpecError(_one_problem(str(error), named[key])) from None
    raise SpecError(_one_problem(str(problem), together)) from None


def _one_problem(message: str, source: str) -> str:
    """``source: field: problem``: the loader's one-problem heading dropped, as no file line follows."""
    head = f"{source}: 1 problem in the spec:\n  "
    return message[len(head):] if message.startswith(head) else message


def _parts(key: Any, source: str) -> list[Part]:
    if not isinstance(key, str) or not _PATH.fullmatch(key):
        raise SpecError(f"{source}: {key!r} is not a setting's path: names joined by dots, a list's item by its "
                        "position in brackets (train.optimizer.lr, architectures.A1[0].conv.filters)")
    return [int(index) if index else name for name, index in _PARTS.findall(key)]


def _shown(trail: list[Part]) -> str:
    text = ""
    for part in trail:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _set(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set the value at ``key`` in the dumped spec, or say which part of the path does not exist."""
    parts = _parts(key, source)
    node: Any = data
    trail: list[Part] = []
    fresh = False  # a mapping made here for a setting that was null: the spec's validation names its keys
    at = 0
    while True:
        part = parts[at]
        if isinstance(part, int):
            if not isinstance(node, list):
                raise SpecError(f"{source}: {_shown(trail)} is not a list; [{part}] picks a list's item")
            if part >= len(node):
                raise SpecError(f"{source}: {_shown(trail)} has {len(node)} item{'s' if len(node) != 1 else ''}; "
                                f"[{part}] is past its end (positions count from 0)")
            step, taken = part, 1
        else:
            if not isinstance(node, dict):
                raise SpecError(f"{source}: {_shown(trail)} holds a value, not settings; set it with "
                                f"{_shown(trail)}=VALUE")
            step, taken = _step(node, parts, at, trail, fresh, key, source)
        at += taken
        if at == len(parts):
            node[step] = value
            return
        child = node[step] if isinstance(node, list) else node.get(step)
        fresh = child is None and isinstance(parts[at], str)
        if fresh:  # reaching into a setting left unset (or a new variant's): as writing its mapping
            child = node[step] = {}
        node = child
        trail.append(step)


def _step(node: dict[str, Any], parts: list[Part], at: int, trail: list[Part], fresh: bool, key: str,
          source: str) -> tuple[str, int]:
    """The key of ``node`` that ``parts[at:]`` starts with, and how many parts it takes."""
    names: list[str] = []
    for part in parts[at:]:
        if not isinstance(part, str):
            break
        names.append(part)
    for taken in range(len(names), 0, -1):  # the longest first: sweep keys such as conv.kernel hold dots
        if ".".join(names[:taken]) in node:
            return ".".join(names[:taken]), taken
    last = at + len(names) == len(parts)
    if fresh:
        return names[0], 1
    if trail == ["sweep"] and last:
        return ".".join(names), len(names)  # a new sweep key (conv.filters)
    if len(trail) == 1 and trail[0] in NAMED_BY_USER and len(names) == 1 and last:
        return names[0], 1  # a new variant or architecture, given whole
    where = f"{_shown(trail)} has" if trail else "the spec has"
    known = [str(name) for name in node]
    listed = f"; its keys: {', '.join(known)}" if known else ""
    raise SpecError(f"{source}: {key!r} is not a setting of the spec: {where} no {names[0]!r}"
                    f"{did_you_mean(names[0], known)}{listed}")


def with_flag(values: Optional[Mapping[str, Any]], key: str, flag: str, value: Any) -> dict[str, Any]:
    """The overrides with a flag's setting added (``--precision bf16`` is ``train.precision=bf16``);
    a SpecError when the two disagree."""
    out = dict(values or {})
    if value is not None:
        if key in out and out[key] != value:
            raise SpecError(f"{SOURCE}: {flag} {value} and {override_word(key, out[key])} disagree; give one of them")
        out[key] = value
    return out
