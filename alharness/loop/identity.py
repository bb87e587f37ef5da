"""Run identity: a run is named by what determines its results, not by when it ran.

Re-running the same command (or a retried cluster job) computes the same id, finds the
folder and resumes. Output locations, logging, progress display and the device are
left out: they do not change what a run computes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: Top-level keys that never change a run's results.
NOT_IDENTITY = ("results_dir", "data_dir", "experiment_name", "experiment_suffix", "logger",
                "progress", "resume", "seeds", "device", "torch_threads", "hydra")
#: Nested keys that never change a run's results (where data lives is not what it is; the
#: process count keeps the global batch, see README "Distributed runs").
NOT_IDENTITY_NESTED = (("trainer", "num_workers"), ("trainer", "eval_batch_size"),
                       ("trainer", "devices"), ("trainer", "num_nodes"),
                       ("dataset", "root"), ("dataset", "download"), ("dataset", "manifest_dir"))


def identity_config(cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The part of a resolved config (plain dict) that determines one seed's results."""
    ident = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in NOT_IDENTITY}
    for section, key in NOT_IDENTITY_NESTED:
        if isinstance(ident.get(section), dict):
            ident[section].pop(key, None)
    ident["seed"] = int(seed)
    return ident


def stable_hash(obj: Any, length: int = 10) -> str:
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def run_id(cfg: Mapping[str, Any], seed: int) -> str:
    """``<strategy>-s<seed>-<hash>``: readable in a file browser, unique by content."""
    strategy = cfg.get("strategy", {}).get("name", "strategy")
    return f"{strategy}-s{seed}-{stable_hash(identity_config(cfg, seed))}"


def setting_hash(cfg: Mapping[str, Any]) -> str:
    """Hash of everything but the strategy and seed: runs that may be compared share it."""
    ident = identity_config(cfg, 0)
    ident.pop("strategy", None)
    ident.pop("seed", None)
    return stable_hash(ident, 8)
