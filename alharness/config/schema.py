"""The schema of a composed config and the one place it is checked (`validate_config`):
types, ranges, list shapes, required keys and paths, before anything is written.

Sections are checked against the type hints of the code they configure (`Budget`,
`TrainerConfig`, each component's constructor, see `alharness.config.components`);
the top-level keys against `Options`. The result, a `RunConfig`, is what the runner
receives.

Why pydantic rather than Hydra structured configs: component parameters are typed with
unions (``int | None``, ``Sequence[str] | None``) and annotated bounds that OmegaConf's
structured configs cannot express, and they come from constructors, not from dataclasses
registered ahead of time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from annotated_types import MinLen

from alharness.bounds import Count, NonNegative
from alharness.config.components import COMPONENT_SECTIONS, check_component
from alharness.config.messages import contract, unknown_key
from alharness.config.paths import check_directory
from alharness.config.sections import check, dataclass_schema
from alharness.errors import ConfigError
from alharness.loop.budget import Budget
from alharness.training.trainer import TrainerConfig


@dataclass(frozen=True)
class Options:
    """The top-level keys of ``configs/config.yaml``."""

    experiment_name: Annotated[str, MinLen(1)]
    results_dir: Annotated[str, MinLen(1)]
    data_dir: Annotated[str, MinLen(1)]
    seeds: Annotated[list[NonNegative], MinLen(1)]
    experiment_suffix: str = ""
    device: str = "auto"
    torch_threads: Count | None = None
    deterministic: bool = True
    progress: bool = True
    resume: bool = True


#: Sections that are dataclasses of the rooms below.
DATACLASS_SECTIONS = {"budget": Budget, "trainer": TrainerConfig}
SECTIONS = (*COMPONENT_SECTIONS, *DATACLASS_SECTIONS)
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class RunConfig:
    """A validated config: typed sections, and ``values``, the same config as plain data
    (normalised: ``lr=1`` reads 1.0) from which run ids are hashed and ``config.yaml`` is
    written."""

    values: dict[str, Any]
    options: Options
    budget: Budget
    trainer: TrainerConfig

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.values[name])


def validate_config(cfg: Mapping[str, Any] | RunConfig) -> RunConfig:
    """Check a composed, resolved config (plain data); the first problem found is a
    one-line `ConfigError` in the contract format (see `alharness.config.messages`)."""
    if isinstance(cfg, RunConfig):
        return cfg
    known = [*SECTIONS, *dataclass_schema(Options).annotations]
    for key, value in cfg.items():
        if key not in known:
            raise unknown_key(key, value, known)
    for key in SECTIONS:
        if key not in cfg:
            raise ConfigError(contract(key, "required but not set", expected=f"{key}=<option>"))
    values: dict[str, Any] = {}
    for key, value in cfg.items():
        if key in COMPONENT_SECTIONS:
            values[key] = check_component(key, value)
        elif key in DATACLASS_SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(contract(key, "not a config group", value, f"{key}=<option>"))
            values[key] = check(dataclass_schema(DATACLASS_SECTIONS[key]),
                                {k: v for k, v in value.items() if k != "name"}, key)
    top = check(dataclass_schema(Options), {k: v for k, v in cfg.items() if k not in SECTIONS}, "")
    values.update(top)
    values = {key: values[key] for key in cfg}  # the composed order
    options = Options(**top)
    _check_options(options)
    config = RunConfig(values, options, Budget(**values["budget"]),
                       TrainerConfig(**values["trainer"]))
    from alharness.strategies import build_strategy

    build_strategy(config.section("strategy"))  # the constructor's own range checks
    return config


def _check_options(options: Options) -> None:
    if not _DEVICE.fullmatch(options.device):
        raise ConfigError(contract("device", "not a device", options.device,
                                   "auto, cpu, cuda or cuda:<index>"))
    seen = set()
    for seed in options.seeds:
        if seed in seen:
            raise ConfigError(contract("seeds", f"seed {seed} is listed twice", options.seeds,
                                       "distinct integers ≥ 0"))
        seen.add(seed)
    name = Path(options.experiment_name)
    if name.is_absolute() or ".." in name.parts:
        raise ConfigError(contract("experiment_name", "not a folder name", options.experiment_name,
                                   "a relative name inside results_dir, e.g. my-experiment"))
    check_directory("results_dir", options.results_dir, writable=True)
    check_directory("data_dir", options.data_dir, writable=False)
