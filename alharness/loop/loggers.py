"""Where per-cycle rows go besides ``rows.csv``: nowhere (``console``) or wandb.

wandb runs offline unless the user says otherwise (``logger.mode=online``), so runs work
on machines without network; ``wandb sync`` uploads them later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from alharness.registry import Registry

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

    def skipped(self, run_id: str, folder: Path) -> None:
        """Called instead of `start` for a run that had already finished."""


class WandbLogger(RunLogger):
    """One wandb run per seed, grouped by experiment, named by run id."""

    def __init__(self, project: str = "alharness", entity: str | None = None,
                 mode: Literal["offline", "online", "disabled"] = "offline",
                 group: str | None = None, tags: list[str] | None = None) -> None:
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
        if self._run is None:
            return
        run_dir = Path(self._run.dir).parent  # <folder>/wandb/offline-run-<time>-<id>
        self._run.finish()
        self._run = None
        if self.mode == "offline":
            print(f"wandb: offline run saved in {run_dir}; upload it with: wandb sync {run_dir}",
                  flush=True)

    def skipped(self, run_id: str, folder: Path) -> None:
        """Say that nothing was logged, and where an earlier offline run is, if any."""
        earlier = sorted((folder / "wandb").glob("offline-run-*"))
        where = (f"; its earlier offline run: wandb sync {earlier[-1]}" if earlier else "")
        print(f"wandb: {run_id} was already finished, so nothing was logged this time{where}",
              flush=True)


LOGGERS: Registry[type[RunLogger]] = Registry("logger")
LOGGERS.register("console")(RunLogger)
LOGGERS.register("wandb")(WandbLogger)


def build_logger(cfg: Mapping[str, Any], experiment: str) -> RunLogger:
    """``{"name": ..., **params}``; a wandb group left null is the experiment name."""
    params = dict(cfg)
    cls = LOGGERS.get(params.pop("name", "console"))
    if cls is WandbLogger and params.get("group") is None:
        params["group"] = experiment
    return cls(**params)
