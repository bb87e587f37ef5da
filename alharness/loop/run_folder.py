"""One run's folder: ``results/<experiment>/<run-id>/``.

    config.yaml   the resolved config of this run (seed included)
    identity.json what the run id was hashed from (checked on resume)
    rows.csv      one tidy row per finished cycle (docs/results.md lists the columns)
    picks.npz     ``initial`` and ``cycle_<c>``: pool indices labelled at start / picked in cycle c
    state.pt      checkpoint after the last finished cycle: labelled set, rows, picks,
                  strategy cache (and model weights when ``trainer.reinit=false``)
    status.json   ``running`` or ``finished``, cycles done

Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written file; ``state.pt`` is written last and is what a resume trusts.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from alharness.errors import CheckpointError

STATE_VERSION = 1


@dataclass
class LoopState:
    """Everything needed to continue a run after its last finished cycle."""

    next_cycle: int
    labelled: np.ndarray
    rows: list[dict[str, Any]] = field(default_factory=list)
    picks: dict[str, np.ndarray] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    model_state: dict[str, torch.Tensor] | None = None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def state_file(self) -> Path:
        return self.path / "state.pt"

    def status(self) -> dict[str, Any]:
        file = self.path / "status.json"
        if not file.is_file():
            return {"status": "new"}
        try:
            return json.loads(file.read_text())
        except (OSError, json.JSONDecodeError):
            return {"status": "unknown"}

    def is_finished(self) -> bool:
        return self.status().get("status") == "finished" and (self.path / "rows.csv").is_file()

    def check_identity(self, identity: dict[str, Any]) -> None:
        """Refuse to resume a folder that was written by a different config."""
        file = self.path / "identity.json"
        if not file.is_file():
            return
        try:
            stored = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{file} is unreadable ({exc}); delete {self.path} to re-run "
                                  "this seed from scratch") from exc
        if json.loads(json.dumps(identity, default=str)) != stored:
            raise CheckpointError(f"{self.path} holds a run with a different config (hash "
                                  f"collision or edited files); move it away and re-run")

    def start(self, config: dict[str, Any], identity: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
        _atomic_write(self.path / "identity.json",
                      json.dumps(identity, indent=1, sort_keys=True, default=str).encode())

    def load_state(self) -> LoopState | None:
        """The last checkpoint, or None for a run that has not finished a cycle yet."""
        if not self.state_file.is_file():
            return None
        try:
            raw = torch.load(self.state_file, map_location="cpu", weights_only=False)
            if raw.get("version") != STATE_VERSION:
                raise ValueError(f"state version {raw.get('version')} != {STATE_VERSION}")
            return LoopState(next_cycle=int(raw["next_cycle"]), labelled=np.asarray(raw["labelled"]),
                             rows=list(raw["rows"]), picks=dict(raw["picks"]),
                             cache=dict(raw["cache"]), model_state=raw.get("model_state"))
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {self.state_file} is corrupt ({type(exc).__name__}: {exc}); "
                f"delete {self.path} to re-run this seed from scratch") from exc

    def save(self, state: LoopState, finished: bool) -> None:
        """Write rows, picks, then the checkpoint, then the status (in that order)."""
        _atomic_write(self.path / "rows.csv", pd.DataFrame(state.rows).to_csv(index=False).encode())
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **state.picks)
        _atomic_write(self.path / "picks.npz", buffer.getvalue())
        buffer = io.BytesIO()
        torch.save({"version": STATE_VERSION, "next_cycle": state.next_cycle,
                    "labelled": state.labelled, "rows": state.rows, "picks": state.picks,
                    "cache": state.cache, "model_state": state.model_state}, buffer)
        _atomic_write(self.state_file, buffer.getvalue())
        status = {"status": "finished" if finished else "running",
                  "cycles_done": state.next_cycle, "updated": time.time()}
        _atomic_write(self.path / "status.json", json.dumps(status).encode())

    def rows(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "rows.csv")

    def finished_rows(self, cycles: int) -> pd.DataFrame:
        """The rows of a finished run, refused with one line if ``rows.csv`` cannot be read
        or lacks any of cycles ``0 … cycles`` (a damaged or hand-edited file)."""
        file = self.path / "rows.csv"
        try:
            rows = self.rows()
        except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(f"{file}: unreadable in a finished run ({type(exc).__name__}: "
                                  f"{detail}); delete {self.path} to re-run this seed") from None
        done = sorted(rows["cycle"].tolist()) if "cycle" in rows.columns else []
        if done != list(range(cycles + 1)):
            raise CheckpointError(f"{file}: a finished run with {len(done)} of its {cycles + 1} "
                                  f"cycles; delete {self.path} to re-run this seed")
        return rows
