"""Entry point: ``python run.py [overrides]`` or ``python run.py -m <sweep>``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from alharness.errors import HarnessError


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from alharness.loop import run_experiment

    try:
        run_experiment(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
