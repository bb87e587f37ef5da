"""One format for every config error::

    <key>: <what is wrong> (got <value>; expected <what is accepted>)

What is accepted is read from the type hints that validated the value, so the message
and the check cannot drift apart.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import ValidationError

from alharness.errors import ConfigError

#: OmegaConf's mark for a value the config requires but does not set.
MISSING = "???"
_UNSET = object()
_NOUNS = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
          float: ("a number", "numbers"), str: ("a string", "strings"),
          Path: ("a path", "paths"), type(None): ("null", "nulls")}
_CONSTRAINTS = ((at.Gt, "gt", ">"), (at.Ge, "ge", "≥"), (at.Lt, "lt", "<"), (at.Le, "le", "≤"))
_PROBLEMS = {"missing": "required but not set", "extra_forbidden": "unknown key",
             "literal_error": "not a valid choice", "too_short": "too few items",
             "too_long": "too many items", "string_too_short": "empty",
             "greater_than": "out of range",
             "greater_than_equal": "out of range", "less_than": "out of range",
             "less_than_equal": "out of range"}


def show(value: Any, limit: int = 60) -> str:
    """A value as the user would type it: strings quoted, ``null``, ``true``, lists."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str):
        text = MISSING if value == MISSING else repr(value)
    else:
        text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def contract(key: str, problem: str, got: Any = _UNSET, expected: str | None = None) -> str:
    """``key: problem (got value; expected ...)``, leaving out the parts not given."""
    parts = ([] if got is _UNSET else [f"got {show(got)}"]) + (
        [f"expected {expected}"] if expected else [])
    return f"{key}: {problem}" + (f" ({'; '.join(parts)})" if parts else "")


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a mistyped ``word``, if one is close enough."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key(key: str, value: Any, valid: Sequence[str], prefix: str = "") -> ConfigError:
    """``trainer.lrr: unknown key, did you mean trainer.lr? (got 1; expected one of ...)``."""
    guess = nearest(key.rsplit(".", 1)[-1], valid)
    problem = "unknown key" + (f", did you mean {prefix}{guess}?" if guess else "")
    return ConfigError(contract(key, problem, value,
                                "one of " + ", ".join(f"{prefix}{k}" for k in valid)))


def unknown_choice(key: str, value: Any, valid: Sequence[str], what: str = "option") -> ConfigError:
    """``strategy: unknown option 'nope' (expected one of margin, entropy, ...)``."""
    guess = nearest(str(value), valid)
    problem = f"unknown {what} {show(value)}" + (f", did you mean {guess}?" if guess else "")
    return ConfigError(contract(key, problem, expected="one of " + ", ".join(valid)))


def _constraint_text(metadata: Iterable[Any]) -> tuple[str, str]:
    """(adjective, trailing bounds): ``("non-empty", "")``, ``("", "≥ 0 and < 1")``."""
    adjective, parts = "", []
    for item in metadata:
        for kind, attr, sign in _CONSTRAINTS:
            value = getattr(item, attr, None)
            if isinstance(item, kind | at.Interval) and value is not None:
                parts.append(f"{sign} {value}")
        if isinstance(item, at.MinLen | at.Len) and getattr(item, "min_length", 0):
            if item.min_length == 1:
                adjective = "non-empty"
            else:
                parts.append(f"with at least {item.min_length} items")
    return adjective, " and ".join(parts)


def _noun(annotation: Any, plural: bool = False) -> str:
    """``an integer ≥ 1`` (or ``integers ≥ 1``) for ``Annotated[int, Ge(1)]``."""
    annotation, (adjective, bounds) = _strip(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        text = " or ".join(dict.fromkeys(_noun(a, plural) for a in typing.get_args(annotation)))
    elif origin is typing.Literal:
        text = "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    elif origin in (list, tuple, set) or (isinstance(origin, type)
                                          and issubclass(origin, Sequence)):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        text = ("lists" if plural else "a list") + (
            f" of {_noun(args[0], plural=True)}" if args else "")
    elif annotation in _NOUNS:
        text = _NOUNS[annotation][plural]
    elif annotation is Any:
        text = "any values" if plural else "any value"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    if adjective:
        text = re.sub(r"^(an?) ", f"a {adjective} ", text) if not plural else f"{adjective} {text}"
    return f"{text} {bounds}".strip()


def _strip(annotation: Any) -> tuple[Any, tuple[str, str]]:
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, _constraint_text(metadata)
    return annotation, ("", "")


def describe(annotation: Any) -> str:
    """What a type hint accepts, in words: ``a number > 0 or null``."""
    return _noun(annotation)


def from_validation_error(exc: ValidationError, section: str, values: Mapping[str, Any],
                          annotations: Mapping[str, Any]) -> ConfigError:
    """The first field pydantic rejected, as one contract line. Of a union's several
    complaints, a violated bound or choice wins over a type mismatch (the value had the
    right type for that member)."""
    errors = exc.errors()
    field = str(errors[0]["loc"][0]) if errors[0]["loc"] else ""
    mine = [e for e in errors if e["loc"] and str(e["loc"][0]) == field] or errors[:1]
    chosen = next((e for e in mine if e["type"] in _PROBLEMS), mine[0])
    problem = _PROBLEMS.get(chosen["type"], "wrong type")
    items = [p for p in chosen["loc"][1:] if isinstance(p, int)]
    if items and chosen["type"] != "missing":
        problem += f" at item {items[0]}"
    key = f"{section}.{field}" if section and field else (section or field)
    if chosen["type"] == "extra_forbidden":
        return unknown_key(key, values.get(field), list(annotations), f"{section}." if section else "")
    expected = describe(annotations[field]) if field in annotations else chosen["msg"]
    return ConfigError(contract(key, problem, values.get(field, MISSING), expected))
