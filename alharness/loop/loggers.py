"""Where per-cycle rows go besides ``rows.csv``: nowhere (``console``) or wandb.

wandb runs offline unless the user says otherwise (``logger.mode=online``), so runs work
on machines without network; ``wandb sync`` uploads them later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alharness.errors import ConfigError

log = logging.getLogger("alharness")


class RunLogger:
    """Does nothing; the console output is the runner's progress bars and summary."""

    def start(self, run_id: str, config: dict[str, Any], folder: Path) -> None:
        pass

    def log_row(self, row: Mapping[str, Any]) -> None:
        pass

    def log_files(self, paths: list[Path]) -> None:
        pass

    def log_figures(self, experiment_root: Path, folder: Path) -> None:
        """Called once a run has finished: loggers that keep figures log them here."""

    def finish(self) -> None:
        pass


class WandbLogger(RunLogger):
    """One wandb run per seed, grouped by experiment, named by run id."""

    def __init__(self, project: str = "alharness", entity: str | None = None,
                 mode: str = "offline", group: str | None = None,
                 tags: list[str] | None = None) -> None:
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"logger.mode={mode!r}; use offline, online or disabled")
        self.project, self.entity, self.mode = project, entity, mode
        self.group, self.tags = group, list(tags or [])
        self._run = None

    def start(self, run_id: str, config: dict[str, Any], folder: Path) -> None:
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self._run = wandb.init(project=self.project, entity=self.entity, mode=self.mode,
                               group=self.group, name=run_id, id=run_id, resume="allow",
                               config=config, dir=str(folder), tags=self.tags, reinit=True)

    def log_row(self, row: Mapping[str, Any]) -> None:
        numbers = {k: v for k, v in row.items() if isinstance(v, int | float)}
        self._run.log(numbers, step=int(row["cycle"]))

    def log_files(self, paths: list[Path]) -> None:
        import wandb

        for path in paths:
            if path.suffix == ".png":
                prefix = "figures/curves" if path.parent.name == "curves" else "figures"
                self._run.log({f"{prefix}/{path.stem}": wandb.Image(str(path))})

    def log_figures(self, experiment_root: Path, folder: Path) -> None:
        """The experiment's report so far (every finished run under ``experiment_root``,
        this one included) written to ``folder/figures``; its PNGs go to this wandb run.
        A report problem is a warning: the run's results are already saved."""
        from alharness.errors import HarnessError
        from alharness.report import write_report

        try:
            report = write_report([experiment_root], folder / "figures", quiet=True)
        except (HarnessError, ValueError) as exc:
            log.warning("figures for wandb not written: %s", exc)
            return
        self.log_files([p for p in report.files if p.suffix == ".png"])

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def build_logger(cfg: Mapping[str, Any], experiment: str) -> RunLogger:
    params = dict(cfg)
    name = params.pop("name", "console")
    if name == "console":
        return RunLogger()
    if name == "wandb":
        params.setdefault("group", experiment)
        if params.get("group") is None:
            params["group"] = experiment
        return WandbLogger(**params)
    raise ConfigError(f"unknown logger {name!r}; valid names: console, wandb")
