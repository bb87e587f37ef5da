"""Schemas read from code: a config section is checked against the type hints of the
dataclass or the constructor it configures, so adding a parameter to a strategy, a
dataset loader, a backbone or `TrainerConfig` is all it takes to have it validated.

Validation is pydantic's, in strict mode: ``"12"`` is not an integer, ``true`` is not
1, a string is never read as a list, ``inf`` and ``nan`` are not numbers; an integer is
accepted where a number is.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from alharness.config.messages import (
    MISSING,
    contract,
    describe,
    from_validation_error,
    unknown_key,
)
from alharness.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: defaults may be lists
class Schema:
    """The fields of one section: name → (type hint, default or ``...`` when required)."""

    name: str
    fields: tuple[tuple[str, Any, Any], ...]
    open: bool = False  # the constructor takes **kwargs: unknown keys are passed on

    @property
    def annotations(self) -> dict[str, Any]:
        return {name: hint for name, hint, _ in self.fields}

    @property
    def model(self) -> type[BaseModel]:
        return _model(self)


@cache
def _model(schema: Schema) -> type[BaseModel]:
    config = ConfigDict(strict=True, extra="allow" if schema.open else "forbid",
                        allow_inf_nan=False, arbitrary_types_allowed=True,
                        protected_namespaces=())
    fields = {name: (hint, default) for name, hint, default in schema.fields}
    return create_model(f"{schema.name}_schema", __config__=config, **fields)


@cache
def signature_schema(factory: Callable[..., Any], skip: tuple[str, ...] = ()) -> Schema:
    """The keyword parameters of ``factory`` (a function or a class's ``__init__``)."""
    hints = typing.get_type_hints(factory, include_extras=True)
    fields, open_ = [], False
    for name, param in inspect.signature(factory).parameters.items():
        if name == "self" or name in skip or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            open_ = True
            continue
        default = ... if param.default is param.empty else param.default
        fields.append((name, hints.get(name, Any), default))
    return Schema(getattr(factory, "__qualname__", "params"), tuple(fields), open_)


@cache
def dataclass_schema(cls: type) -> Schema:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = tuple((f.name, hints[f.name], ... if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING else
                    (f.default if f.default is not dataclasses.MISSING else f.default_factory()))
                   for f in dataclasses.fields(cls) if f.init)
    return Schema(cls.__name__, fields)


def check(schema: Schema, values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """``values`` checked against ``schema``; returns the keys that were given, with
    their validated values (an integer given for a number becomes a float), in the
    order given. Raises a one-line `ConfigError` naming ``section.key``."""
    values = dict(values)
    prefix = f"{section}." if section else ""
    known = schema.annotations
    if not schema.open:
        for key, value in values.items():
            if key not in known:
                raise unknown_key(prefix + key, value, list(known), prefix)
    for key, value in values.items():
        if isinstance(value, str) and value == MISSING:
            expected = describe(known[key]) if key in known else None
            raise ConfigError(contract(prefix + key, "required but not set", value, expected))
    try:
        validated = schema.model.model_validate(values)
    except ValidationError as exc:
        raise from_validation_error(exc, section, values, known) from None
    dumped = validated.model_dump()
    return {key: dumped.get(key, values[key]) for key in values}


def build_dataclass(cls: type[T], values: Mapping[str, Any], section: str) -> T:
    """An instance of the dataclass ``cls`` from config ``values``, validated."""
    return cls(**check(dataclass_schema(cls), values, section))
