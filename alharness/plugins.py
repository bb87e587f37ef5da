"""Plugins: packages installed beside alharness that add strategies, datasets, backbones
and their configs, so a method can live in its author's own repository.

A plugin declares Python entry points (``pyproject.toml`` of the plugin)::

    [project.entry-points."alharness.strategies"]
    my_method = "my_plugin.strategy"        # a module whose import runs @register_strategy

    [project.entry-points."alharness.configs"]
    my_plugin = "my_plugin.configs"         # a package holding strategy/my_method.yaml, ...

The registries import the modules of their group the first time they are used
(`alharness.registry.Registry`), so nothing is imported for a command that never asks.
The config packages are added to Hydra's search path, after alharness's own configs, by
the search-path plugin in ``hydra_plugins/alharness_plugins`` (Hydra discovers it in
the ``hydra_plugins`` namespace package that alharness installs).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from alharness.errors import ConfigError

STRATEGIES_GROUP = "alharness.strategies"
DATASETS_GROUP = "alharness.datasets"
BACKBONES_GROUP = "alharness.backbones"
CONFIGS_GROUP = "alharness.configs"


def plugin_entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, in a stable order (by name, then value)."""
    return sorted(entry_points(group=group), key=lambda ep: (ep.name, ep.value))


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "the package that declares it"


def load_plugins(group: str) -> None:
    """Import every entry point of ``group``; their import registers what they provide.

    A plugin that fails to import is an error naming it, not a silently missing name:
    otherwise ``strategy=my_method`` would only say the name is unknown.
    """
    for ep in plugin_entry_points(group):
        try:
            ep.load()
        except Exception as exc:
            dist = _distribution(ep)
            raise ConfigError(
                f"plugin {ep.name!r} ({ep.value}, group {group}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {exc}; fix it or uninstall it (pip uninstall {dist})"
            ) from exc


def plugin_config_paths() -> list[str]:
    """Hydra search-path entries (``pkg://<package>``) of every installed config plugin,
    after alharness's own: a plugin adds options to the groups, it cannot shadow one."""
    return [f"pkg://{ep.value.split(':')[0].strip()}" for ep in plugin_entry_points(CONFIGS_GROUP)]
