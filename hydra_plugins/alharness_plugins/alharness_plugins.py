"""Hydra search-path plugin: the config packages of installed alharness plugins.

Hydra imports every module under the ``hydra_plugins`` namespace package at start-up and
calls each `SearchPathPlugin`. This one appends ``pkg://<package>`` for every entry point
of the ``alharness.configs`` group (`alharness.plugins.plugin_config_paths`), and only
when the app composes alharness's own configs, so other Hydra apps are left alone.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from alharness.config_location import is_alharness_config_source
from alharness.plugins import plugin_config_paths


class AlharnessPluginConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(is_alharness_config_source(entry.path) for entry in search_path.get_path()):
            return
        for path in plugin_config_paths():
            search_path.append(provider="alharness-plugin", path=path)
