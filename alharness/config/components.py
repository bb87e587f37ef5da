"""The schema of a ``dataset``, ``backbone``, ``strategy`` or ``logger`` section: its
``name`` picks a registered component, and the rest is that component's keyword
parameters, read from its constructor's signature and type hints (plus the few keys the
room itself handles, e.g. a dataset's declared ``task``). Nothing here lists parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from alharness.config.messages import contract, unknown_choice
from alharness.config.sections import Schema, check, signature_schema
from alharness.errors import ConfigError
from alharness.registry import Registry


@dataclass(frozen=True)
class Room:
    """Where a section's components are registered, and what is not their constructor's."""

    registry: Registry
    skip: tuple[str, ...] = ()  # constructor arguments the room supplies (a backbone's info)
    extra: tuple[tuple[str, Any], ...] = ()  # config keys the room handles itself


def _rooms() -> dict[str, Room]:
    from alharness.data.base import DATASETS, DECLARED_KEYS
    from alharness.loop.loggers import LOGGERS
    from alharness.models import BACKBONES
    from alharness.models.base import BUILD_KEYS
    from alharness.strategies import STRATEGIES

    return {"dataset": Room(DATASETS, extra=tuple(DECLARED_KEYS.items())),
            "backbone": Room(BACKBONES, skip=("info",), extra=tuple(BUILD_KEYS.items())),
            "strategy": Room(STRATEGIES),
            "logger": Room(LOGGERS)}


#: The sections validated here, in config order.
COMPONENT_SECTIONS = ("dataset", "backbone", "strategy", "logger")


def _constructor(component: Any) -> Callable[..., Any]:
    if isinstance(component, type):
        return component.__init__ if component.__init__ is not object.__init__ else _no_params
    return component


def _no_params() -> None:
    """The constructor of a component that takes no parameters."""


@cache
def component_schema(section: str, name: str) -> Schema:
    """``name`` (a registered component) plus its constructor's parameters."""
    room = _rooms()[section]
    params = signature_schema(_constructor(room.registry.get(name)), room.skip)
    fields = (("name", str, ...), *((key, hint, None) for key, hint in room.extra), *params.fields)
    return Schema(f"{section}_{name}", fields, params.open)


def check_component(section: str, values: Any) -> dict[str, Any]:
    """The section, validated against the schema its ``name`` selects."""
    if not isinstance(values, Mapping):
        raise ConfigError(contract(section, "not a config group", values,
                                   f"{section}=<option>, see python run.py --help"))
    registry = _rooms()[section].registry
    name = values.get("name")
    if name not in registry:
        if name is None:
            raise ConfigError(contract(f"{section}.name", "required but not set",
                                       expected="one of " + ", ".join(registry.names())))
        raise unknown_choice(f"{section}.name", name, registry.names(), registry.kind)
    return check(component_schema(section, name), values, section)
