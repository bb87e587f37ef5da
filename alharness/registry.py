"""Name -> factory registries (timm style) for datasets, backbones and strategies.

Components register themselves with a decorator at import time; each package's
``__init__`` imports its modules so that ``Registry.get`` sees every built-in name.
Installed plugins (`alharness.plugins`) are imported the first time a registry with a
plugin group is asked for a name, so they register the same way, without a change here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from alharness.errors import ConfigError
from alharness.plugins import load_plugins

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories with a helpful error for unknown names.

    ``plugin_group`` is the entry-point group whose modules are imported before the first
    lookup (e.g. ``alharness.strategies``); ``None`` for a registry without plugins.
    """

    def __init__(self, kind: str, plugin_group: str | None = None) -> None:
        self.kind = kind
        self.plugin_group = plugin_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = plugin_group is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("margin")``."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def _entries_with_plugins(self) -> dict[str, T]:
        if not self._plugins_loaded:
            self._plugins_loaded = True  # before loading: a plugin may look names up
            try:
                load_plugins(self.plugin_group)
            except ConfigError:
                self._plugins_loaded = False  # report it again on the next lookup
                raise
        return self._entries

    def get(self, name: str) -> T:
        entries = self._entries_with_plugins()
        try:
            return entries[name]
        except KeyError:
            valid = ", ".join(sorted(entries))
            raise ConfigError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._entries_with_plugins())

    def __contains__(self, name: object) -> bool:
        return name in self._entries_with_plugins()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
