"""The base of every spec model: unknown keys are errors that suggest the closest known key."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from cnnlab.registry import did_you_mean


class SpecModel(BaseModel):
    """Frozen, strict about keys, and round-trips through ``model_dump``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known: list[str] = []
        for name, field in cls.model_fields.items():
            known.append(name)
            if isinstance(field.alias, str):
                known.append(field.alias)
            if field.validation_alias is not None and hasattr(field.validation_alias, "choices"):
                known.extend(c for c in field.validation_alias.choices if isinstance(c, str))
        for key in data:
            if key not in known:
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown key '{key}'{hint}; allowed keys: {allowed}",
                    {
                        "key": str(key),
                        "hint": did_you_mean(str(key), known),
                        "allowed": ", ".join(cls.model_fields),
                    },
                )
        return data


def pair(value: Any) -> Any:
    """Keras accepts an int or a pair for kernel sizes and strides: normalize to a pair."""
    if isinstance(value, bool):
        return value  # let the int validator reject it
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list):
        return tuple(value)
    return value


def check_printable(name: str) -> str:
    """Refuse a name holding control characters: names reach terminals, logs and reports, where
    an escape sequence would be acted on rather than shown."""
    for position, character in enumerate(name):
        if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp"):
            raise PydanticCustomError(
                "control_character", "the name {name} holds a control character ({code}) at position {position}; "
                "names may hold letters, digits, punctuation and spaces",
                {"name": short_repr(name, 40), "code": f"U+{ord(character):04X}", "position": position},
            )
    return name


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` for error messages: cut to ``limit`` characters, and safe for any value (Python
    refuses to print integers of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {len(hex(value)) - 2} hexadecimal digits"
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still worth naming by its type
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def scalar_to(field: str):
    """A before-validator letting ``key: value`` stand for ``key: {field: value}``."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, (dict, SpecModel)):
            return value
        return {field: value}

    return BeforeValidator(convert)
