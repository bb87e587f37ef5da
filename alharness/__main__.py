"""``python -m alharness [overrides]`` (also the ``alharness`` command): ``run.py``'s command
line for an installed alharness, composing the packaged configs from any directory."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from alharness.config_location import CONFIG_PATH
from alharness.errors import HarnessError


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def main(cfg: DictConfig) -> None:
    from alharness.loop import run_experiment

    try:
        run_experiment(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
