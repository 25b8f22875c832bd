"""Read a study file: safe YAML with line numbers, validated into a ``Study``.

Every error names the file, the line, the field path, what was expected and what was found.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml
from pydantic import ValidationError

from cnnlab.errors import SpecError
from cnnlab.spec.base import short_repr
from cnnlab.spec.checks import study_problems
from cnnlab.spec.study import Study

# A spec is a few hundred lines; these bounds stop hostile documents (huge files, alias
# "billion laughs" expansion, deep nesting, numbers of thousands of digits) before they cost time
# or memory. The pure-Python parser reads about 50,000 values a second, so MAX_NODES also bounds
# the time a document can take, and the depth is checked while parsing: PyYAML's scanner is
# quadratic in the nesting depth.
MAX_BYTES = 1_000_000
MAX_NODES = 20_000
MAX_DEPTH = 50
MAX_INT_DIGITS = 100  # no spec field takes more; Python refuses to print ints past 4,300 digits


class _Limit(Exception):
    """A document past one of the bounds above, found at ``mark`` while parsing."""

    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: ``1e-5`` is a float and only true/false are booleans.

    PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes`` and ``no`` are booleans, so the
    variant key ``on:`` would silently become ``True:``. It also stops a document as soon as it
    nests deeper than MAX_DEPTH or holds more than MAX_NODES values, and refuses integers of more
    than MAX_INT_DIGITS digits (hexadecimal, octal and base-60 ones included).
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Limit(f"the document nests deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            if self._nodes > MAX_NODES:
                raise _Limit(f"the document has more than {MAX_NODES:,} values", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # Length first: converting thousands of decimal digits is refused by Python itself.
        value = None if len(str(node.value)) > 4 * MAX_INT_DIGITS else super().construct_yaml_int(node)
        if value is None or abs(value) >= 10**MAX_INT_DIGITS:
            raise _Limit(f"an integer of more than {MAX_INT_DIGITS} digits is not a spec value "
                         f"(found {str(node.value)[:20]}...)", node.start_mark)
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

Path_ = tuple[Any, ...]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], budget: list[int], depth: int) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError(f"the document has more than {MAX_NODES:,} values (after expanding aliases)")
    if depth > MAX_DEPTH:
        raise SpecError(f"the document nests deeper than {MAX_DEPTH} levels")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode) and not _is_text(node.value):
        # A YAML escape such as "\ud800" makes a string no file, terminal or database can hold.
        raise _Limit(f"the string {short_repr(node.value, 30)} holds an unpaired surrogate, which is not text",
                     node.start_mark)
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line, key = key_node.start_mark.line + 1, str(key_node.value)
                seen = first_lines.get(key)
                first_lines.setdefault(key, line)
                if seen is not None:
                    # YAML keeps the last of two equal keys: a whole architecture could vanish unseen.
                    where = f" in {_format_path(path)}" if path else ""
                    raise _Limit(f"the key '{short_repr(key_node.value, 40)[1:-1]}' appears twice{where} (lines {seen} "
                                 f"and {line}); YAML would keep only the last one. Remove or rename one",
                                 key_node.start_mark)
            if isinstance(key_node, yaml.ScalarNode) and not _is_text(key_node.value):
                raise _Limit(f"the key {short_repr(key_node.value, 30)} holds an unpaired surrogate, which is not text",
                             key_node.start_mark)
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            lines.setdefault(path + (key,), key_node.start_mark.line + 1)
            _walk(value_node, path + (key,), lines, budget, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, budget, depth + 1)


def _is_text(value: Any) -> bool:
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML safely; return the data and a map from field path to line number."""
    if len(text) > MAX_BYTES:
        raise SpecError(f"{source}: the file is {len(text):,} bytes; a spec is at most {MAX_BYTES:,}")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            lines: dict[Path_, int] = {}
            if node is not None:
                _walk(node, (), lines, [MAX_NODES], 0)
                data = loader.construct_document(node)
            else:
                data = None
        finally:
            loader.dispose()
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None
    except _Limit as error:
        raise SpecError(f"{source}:{error.mark.line + 1}: {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SpecError(f"{where}: not valid YAML: {error.problem or error}") from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as error:
        raise SpecError(f"{source}: not valid YAML: {error}") from None
    return data, lines


def _display_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Keep the parts of a pydantic location that exist in the YAML (drops union tags)."""
    shown: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping) and str(part) in {str(k) for k in node}:
            key = next(k for k in node if str(k) == str(part))
            shown.append(str(part))
            node = node[key]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            shown.append(part)
            node = node[part]
    return tuple(shown)


def _format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _message(error: dict[str, Any]) -> str:
    msg = error["msg"]
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be "):]
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg == "Field required":
        return "this field is required"
    if error["type"] in ("unknown_key", "layer_type", "layer_item", "dataset_name", "sweep_key", "split_count",
                         "control_character"):
        return msg
    found = error.get("input")
    if not isinstance(found, (dict, list)) and found is not None:
        msg += f"; found {short_repr(found)}"
    return msg


def _where(source: str, lines: dict[Path_, int], path: Path_) -> str:
    """``file:line`` of a field path, or of its nearest parent the YAML has."""
    line = lines.get(path)
    while line is None and path:
        path = path[:-1]
        line = lines.get(path)
    return f"{source}:{line}" if line else source


def validation_errors(error: ValidationError, data: Any, lines: dict[Path_, int], source: str) -> list[str]:
    """One line per problem: ``file:line: field.path: expected ...; found ...``."""
    grouped: dict[tuple[Any, ...], list[str]] = {}
    for item in error.errors():
        path = _display_path(tuple(item["loc"]), data)
        if item["type"] == "unknown_key":
            path = path + (item["ctx"]["key"],)
        elif item["type"] == "missing":
            path = path + (item["loc"][-1],)
        messages = grouped.setdefault(path, [])
        message = _message(item)
        if message not in messages:
            messages.append(message)
    out = []
    for path, messages in grouped.items():
        out.append(f"{_where(source, lines, path)}: {_format_path(path)}: {' — or: '.join(messages[:3])}")
    return out


def parse_study(data: Any, source: str = "<spec>", lines: dict[Path_, int] | None = None) -> Study:
    """Validate already-parsed data (a dict from YAML or Python) into a ``Study``."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a study spec is a mapping with keys name, dataset, architectures, ...; found {type(data).__name__}")
    try:
        try:
            study = Study.model_validate(data)
        except ValidationError as error:
            problems = validation_errors(error, data, lines or {}, source)
        else:
            problems = [f"{_where(source, lines or {}, path)}: {_format_path(path)}: {message}"
                        for path, message in study_problems(study)]
            if not problems:
                return study
    except RecursionError:
        raise SpecError(f"{source}: the document nests too deeply") from None
    except UnicodeEncodeError:  # a Python str with an unpaired surrogate, given to the API
        raise SpecError(f"{source}: the spec holds a string with an unpaired surrogate, which is not text") from None
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    raise SpecError(f"{source}: {count} in the spec:\n  " + "\n  ".join(problems))


def load_study(path: str | Path) -> tuple[Study, str]:
    """Read and validate a study file; return the study and its verbatim text."""
    path = Path(path)
    try:
        # Size and kind first: a device file or a pipe given as a spec would be read forever.
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{path}: not a regular file (a device, pipe or socket); give a study .yaml file")
        if info.st_size > MAX_BYTES:
            raise SpecError(f"{path}: the file is {info.st_size:,} bytes; a spec is at most {MAX_BYTES:,}")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # a file that grew since stat is still bounded
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder; give a study .yaml file") from None
    except OSError as error:
        raise SpecError(f"{path}: cannot read: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: not UTF-8 text (byte {error.start})") from None
    data, lines = read_yaml(text, str(path))
    if data is None:
        raise SpecError(f"{path}: the file is empty; see examples/quickstart.yaml for a study spec")
    return parse_study(data, str(path), lines), text


def load_spec(spec: Any) -> tuple[Study, str, Optional[str]]:
    """A study from a file path, a dict or a ``Study``; with its text and its path (None when
    it was not read from a file)."""
    if isinstance(spec, Study):
        return spec, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), None
    if isinstance(spec, Mapping):
        return parse_study(dict(spec), "<dict>"), yaml.safe_dump(dict(spec), sort_keys=False), None
    study, text = load_study(spec)
    return study, text, str(spec)
