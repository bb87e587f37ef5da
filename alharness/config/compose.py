"""Hydra composition, with Hydra's and OmegaConf's own errors turned into one contract
line each: an unknown group option lists the valid ones, an unknown key suggests the
nearest valid key, a parse error names the override.

`Composer` holds the Hydra instance that the command line later runs jobs with, so a
config is composed exactly as Hydra will compose it, only earlier: before Hydra creates
its output folder. ``hydra.main`` has no hook between composing and creating that folder,
so this uses what ``hydra.main`` itself calls (Hydra 1.3's ``hydra._internal``: the
`Hydra` app, its config search path and the basic sweeper's expansion of ``-m`` lists).
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.errors import (
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from alharness.config.messages import contract, unknown_choice, unknown_key
from alharness.config.paths import check_directory
from alharness.config_location import CONFIG_DIR
from alharness.errors import ConfigError

CONFIG_NAME = "config"
#: Hydra's job name (its log file is ``<name>.log`` in the run's ``.hydra`` folder); the
#: same as ``hydra.job.name`` in ``configs/config.yaml``.
TASK_NAME = "alharness"


class Composer:
    """Composes configs from ``config_dir``/``config_name`` (plus an optional extra
    search directory, Hydra's ``--config-dir``)."""

    def __init__(self, config_dir: str | Path = CONFIG_DIR, config_name: str = CONFIG_NAME,
                 extra_dir: str | None = None) -> None:
        GlobalHydra.instance().clear()
        search_path = create_config_search_path(str(Path(config_dir).absolute()))
        if extra_dir is not None:
            directory = Path(extra_dir).absolute()
            if not directory.is_dir():
                raise ConfigError(contract("--config-dir", "not a directory", extra_dir,
                                           "a folder of config files"))
            search_path.prepend("command-line", f"file://{directory}")
        self.config_name = config_name
        self.hydra = Hydra.create_main_hydra2(task_name=TASK_NAME, config_search_path=search_path)

    def compose(self, overrides: Sequence[str], mode: RunMode = RunMode.RUN) -> dict[str, Any]:
        """The task config (no ``hydra`` node) as plain, resolved data. A value the config
        requires but does not set stays ``???`` for the schema to name. Hydra's output
        folder (``hydra.run.dir``, or ``hydra.sweep.dir`` for ``-m``), when moved out of
        ``results_dir``, must be creatable."""
        try:
            with warnings.catch_warnings():  # Hydra's own deprecation notes: it repeats them when it runs
                warnings.simplefilter("ignore")
                cfg = self.hydra.compose_config(self.config_name, list(overrides), run_mode=mode,
                                                with_log_configuration=False)
        except (HydraException, OmegaConfBaseException) as exc:
            raise self.explain(exc, overrides) from None
        plain = to_plain(cfg)
        key = "hydra.sweep.dir" if mode == RunMode.MULTIRUN else "hydra.run.dir"
        try:
            output = Path(str(OmegaConf.select(cfg, key))).absolute()
        except OmegaConfBaseException as exc:
            raise self.explain(exc, overrides) from None
        if not output.is_relative_to(Path(str(plain.get("results_dir", ""))).absolute()):
            check_directory(key, str(output), writable=True)  # else results_dir's check covers it
        return plain

    def sweep_points(self, overrides: Sequence[str]) -> list[list[str]]:
        """The overrides of every job of a ``-m`` sweep (Hydra's basic sweeper's expansion)."""
        try:
            parsed = OverridesParser.create(self.hydra.config_loader).parse_overrides(list(overrides))
            return BasicSweeper.split_arguments(parsed, None)[0]
        except (HydraException, OmegaConfBaseException) as exc:
            raise self.explain(exc, overrides) from None

    def options(self, group: str) -> list[str]:
        """Every option of a config group, nested groups as ``sub/option``."""
        loader = self.hydra.config_loader
        found = list(loader.get_group_options(group))
        for sub in loader.list_groups(group):
            found += [f"{sub}/{option}" for option in self.options(f"{group}/{sub}")]
        return sorted(found)

    def keys_at(self, path: str, overrides: Sequence[str]) -> list[str]:
        """The keys under ``path`` (``trainer``) of the config composed from ``overrides``."""
        try:
            cfg = self.hydra.compose_config(self.config_name, list(overrides),
                                            run_mode=RunMode.RUN, with_log_configuration=False)
        except (HydraException, OmegaConfBaseException):
            return []
        node = OmegaConf.select(cfg, path) if path else cfg
        return list(node.keys()) if isinstance(node, DictConfig) else []

    def explain(self, exc: Exception, overrides: Sequence[str]) -> ConfigError:
        """Hydra's or OmegaConf's error as one contract line."""
        text = str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        if isinstance(exc, MissingConfigException):
            return self._missing_option(exc, overrides)
        if isinstance(exc, OverrideParseException):
            return ConfigError(contract(exc.override, f"cannot parse the override ({first})",
                                        expected="key=value in Hydra's override grammar"))
        if match := re.match(r"Could not override '(.+?)'", text):
            return self._unknown_key(match.group(1), overrides)
        if match := re.match(r"Could not append to config. An item is already at '(.+?)'", text):
            return ConfigError(contract(match.group(1), "already set, so it cannot be added",
                                        expected=f"{match.group(1)}=<value>, without the '+'"))
        if match := re.match(r"Could not delete from config. '(.+?)' does not exist", text):
            return ConfigError(contract(match.group(1), "does not exist, so it cannot be deleted"))
        if match := re.match(r"Ambiguous value for argument '(.+?)=(.*)'", text):
            return ConfigError(contract(match.group(1), "a comma-separated list is a sweep",
                                        match.group(2), "one value; add -m to sweep over the "
                                        "values, or quote them to pass one string"))
        if match := re.match(r"(\S+) appears more than once in the final defaults list", text):
            return ConfigError(contract(match.group(1), "chosen twice", expected=(
                f"one choice: {match.group(1)}=<option> (drop the '+')")))
        if match := re.match(r"Error merging override (.+)", text):
            key, _, value = match.group(1).partition("=")
            cause = str(exc.__cause__ or "").strip().splitlines()
            return ConfigError(contract(key.lstrip("+~"), "cannot be merged" + (
                f" ({cause[0].rstrip('.')})" if cause else ""), value))
        key = getattr(exc, "full_key", None) or "overrides"
        return ConfigError(contract(str(key), first.rstrip(".")))

    def _missing_option(self, exc: MissingConfigException, overrides: Sequence[str]) -> ConfigError:
        missing = str(exc.missing_cfg_file or "")
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if f"{key}/{value}" == missing:
                return unknown_choice(key, value, self.options(key))
        group, _, option = missing.rpartition("/")
        if not group:
            return ConfigError(contract("--config-name", f"no config named {option!r}",
                                        expected=f"a .yaml file in {CONFIG_DIR}"))
        return unknown_choice(group, option, list(exc.options or []) or self.options(group))

    def _unknown_key(self, key: str, overrides: Sequence[str]) -> ConfigError:
        parent = key.rpartition(".")[0]
        mine = [o for o in overrides if o.lstrip("+~").partition("=")[0] == key]
        value = _as_typed(mine[0].partition("=")[2]) if mine else None
        valid = self.keys_at(parent, [o for o in overrides if o not in mine])
        if not valid:
            return ConfigError(contract(key, "unknown key", value))
        return unknown_key(key, value, valid, f"{parent}." if parent else "")


def compose_once(overrides: Sequence[str]) -> dict[str, Any]:
    """The shipped config with ``overrides``, for commands that do not run it through Hydra
    (``scripts/``); Hydra's global state is cleared afterwards."""
    try:
        return Composer().compose(overrides)
    finally:
        GlobalHydra.instance().clear()


def _as_typed(text: str) -> Any:
    """An override's value as the user meant it (``1`` a number), for messages only."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The task part of a composed config as plain data, interpolations resolved (with
    Hydra's runtime config visible to ``${hydra:...}``), ``???`` left in place."""
    task = copy.deepcopy(cfg)
    if "hydra" in task:
        HydraConfig.instance().set_config(cfg)
        with open_dict(task):
            del task["hydra"]
    try:
        return OmegaConf.to_container(task, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(contract(str(key), f"cannot be resolved ({first})")) from None


def job_returns(returns: Any) -> list[JobReturn]:
    """The flat list of `JobReturn`s a sweeper returned (batches of jobs)."""
    if isinstance(returns, JobReturn):
        return [returns]
    if isinstance(returns, list | tuple):
        return [r for item in returns for r in job_returns(item)]
    return []
