"""What running a config will do to each seed's folder, decided before anything is
written: start it, resume it at a cycle, or skip it because it is finished — or refuse,
in one line, a folder that cannot be trusted (another config's, a corrupt checkpoint, a
finished run whose rows are damaged)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alharness.errors import ConfigError
from alharness.loop.identity import identity_config, run_id
from alharness.loop.run_folder import LoopState, RunFolder


@dataclass
class SeedPlan:
    seed: int
    run_id: str
    folder: RunFolder
    identity: dict[str, Any]
    state: LoopState | None = None  # the checkpoint to resume from
    rows: pd.DataFrame | None = None  # a finished run's rows: nothing to do

    @property
    def finished(self) -> bool:
        return self.rows is not None


def plan_seed(cfg: dict[str, Any], root: Path, seed: int, cycles: int) -> SeedPlan:
    """Read (never write) ``root/<run-id>`` for ``seed`` under the resolved config ``cfg``."""
    rid = run_id(cfg, seed)
    folder = RunFolder(root / rid)
    identity = identity_config(cfg, seed)
    folder.check_identity(identity)
    if folder.is_finished():
        return SeedPlan(seed, rid, folder, identity, rows=folder.finished_rows(cycles))
    if not cfg.get("resume", True) and folder.state_file.exists():
        raise ConfigError(f"resume: false, but {folder.path} holds a partial run (expected "
                          "resume=true, or delete that folder to start over)")
    return SeedPlan(seed, rid, folder, identity, state=folder.load_state())


def interruption(plan: SeedPlan, cycles: int) -> str:
    """The line printed on Ctrl-C: what is saved, and that re-running resumes there."""
    done = int(plan.folder.status().get("cycles_done", 0))
    if done > cycles:
        return (f"interrupted: {plan.run_id} had finished all its cycles "
                f"({plan.folder.path}); re-running the same command skips it")
    if done == 0:
        return (f"interrupted: {plan.run_id} had not finished a cycle; re-running the same "
                "command starts it again")
    return (f"interrupted: {plan.run_id} finished cycle {done - 1} of 0..{cycles} "
            f"(saved in {plan.folder.path}); re-running the same command resumes at "
            f"cycle {done}")
