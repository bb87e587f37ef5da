"""Plugins: a package installed beside alharness adds a strategy, a dataset, a backbone and
their configs through entry points (`alharness.plugins`), without a change to alharness.

The package is ``examples/plugin`` (the template the docs show). "Installed" here means
what pip leaves behind, written directly: the package's folder on the path plus a
``.dist-info`` with its entry points, which is all ``importlib.metadata`` reads (pip
itself costs seconds per install; scripts/check_wheel.sh installs it with pip).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from setuptools.config.pyprojecttoml import load_file  # tomllib is Python ≥ 3.11

from alharness.errors import ConfigError
from alharness.registry import Registry
from tests.conftest import FAST, ROOT, compose_config

TEMPLATE = ROOT / "examples" / "plugin"


def install_plugin(site: Path, package_dir: Path = TEMPLATE) -> Path:
    """Copy the plugin's package into ``site`` and write the ``.dist-info`` pip would write
    (METADATA + entry_points.txt from its pyproject.toml); returns ``site``."""
    project = load_file(package_dir / "pyproject.toml")["project"]
    for child in package_dir.iterdir():
        if child.is_dir() and (child / "__init__.py").is_file():
            shutil.copytree(child, site / child.name)
    write_dist_info(site, project["name"], project["version"], project["entry-points"])
    return site


def write_dist_info(site: Path, name: str, version: str,
                    groups: dict[str, dict[str, str]]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items()))


def test_registry_imports_its_plugins_at_the_first_lookup_only(tmp_path, monkeypatch):
    (tmp_path / "things.py").write_text(
        "from alharness.registry import Registry\n"
        "THINGS = Registry('thing', plugin_group='alharness.test_things')\n"
        "THINGS.register('builtin')(int)\n")
    (tmp_path / "late_plugin.py").write_text("from things import THINGS\n"
                                             "THINGS.register('late')(object)\n")
    write_dist_info(tmp_path, "late-plugin", "1.0", {"alharness.test_things": {"x": "late_plugin"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("things", "late_plugin"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    things = importlib.import_module("things").THINGS
    assert "late_plugin" not in sys.modules  # nothing imported before a lookup
    assert things.get("late") is object
    assert things.names() == ["builtin", "late"]
    assert Registry("thing").names() == []  # no group, no plugins


def test_a_plugin_that_fails_to_import_is_named_in_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('needs torch_geometric')\n")
    write_dist_info(tmp_path, "broken-plugin", "2.0", {"alharness.test_broken": {"b": "broken_plugin"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("thing", plugin_group="alharness.test_broken")
    with pytest.raises(ConfigError, match=r"broken_plugin.*broken-plugin.*needs torch_geometric"
                                          r".*pip uninstall broken-plugin"):
        registry.names()
    with pytest.raises(ConfigError):  # and again, not only the first time
        registry.get("anything")


def test_plugin_configs_join_alharness_config_groups(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    cfg = compose_config(["dataset=moons", "backbone=tiny_mlp", "strategy=confidence_ratio"],
                         tmp_path / "results")
    assert cfg["strategy"] == {"name": "confidence_ratio", "temperature": 1.0}
    assert cfg["dataset"]["name"] == "moons" and cfg["backbone"]["width"] == 32
    assert compose_config([], tmp_path / "results")["strategy"]["name"] == "margin"


def test_search_path_plugin_leaves_other_hydra_apps_alone(tmp_path, monkeypatch):
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    from hydra_plugins.alharness_plugins.alharness_plugins import AlharnessPluginConfigs

    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    assert issubclass(AlharnessPluginConfigs, SearchPathPlugin)

    def extended(main: str) -> list[str]:
        search_path: ConfigSearchPath = ConfigSearchPathImpl()
        search_path.append("main", main)
        AlharnessPluginConfigs().manipulate_search_path(search_path)
        return [entry.path for entry in search_path.get_path()]

    other = tmp_path / "other_app_configs"
    other.mkdir()
    assert extended(f"file://{other}") == [f"file://{other}"]
    assert extended(f"file://{ROOT / 'configs'}")[1:] == ["pkg://alharness_example_plugin.configs"]
    assert extended("pkg://alharness.configs")[1:] == ["pkg://alharness_example_plugin.configs"]


@pytest.mark.slow
def test_plugin_strategy_dataset_and_backbone_run_through_run_py(tmp_path):
    """The user's view: `python run.py dataset=moons backbone=tiny_mlp
    strategy=confidence_ratio` with the plugin installed and alharness untouched."""
    site = install_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
           "OMP_NUM_THREADS": "1"}
    overrides = [*FAST, "dataset=moons", "backbone=tiny_mlp", "strategy=confidence_ratio",
                 "strategy.temperature=2.0", f"results_dir={tmp_path / 'results'}"]
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rows_file,) = (tmp_path / "results").rglob("rows.csv")
    rows = pd.read_csv(rows_file)
    assert rows_file.parent.parent.name == "moons-tiny_mlp"
    assert set(rows["strategy"]) == {"confidence_ratio"}
    assert set(rows["strategy_params"]) == {'{"temperature": 2.0}'}
    assert rows["cycle"].tolist() == [0, 1, 2] and rows["n_labelled"].tolist() == [20, 30, 40]
