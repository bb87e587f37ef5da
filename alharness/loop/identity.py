"""Run identity: a run is named by what determines its numbers, not by when it ran.

Re-running the same command (or a retried cluster job) computes the same id, finds the
folder and resumes. Left out: where results and data live, logging, progress display and
the seed list (each seed is its own run). Everything else that changes the numbers is in,
even a little: ``trainer.num_workers`` (random augmentation draws come from the loader's
worker processes, not the main process) and ``trainer.eval_batch_size`` (batch 512 vs 7
changes embeddings by up to 7e-7 on the CPU, enough to reorder near ties). What the
machine does differently with one config is in as ``numerics`` (see `numerics`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: Top-level keys that never change a run's results, or enter it only through `numerics`.
NOT_IDENTITY = ("results_dir", "data_dir", "experiment_name", "experiment_suffix", "logger",
                "progress", "resume", "seeds", "device", "torch_threads", "deterministic",
                "hydra")
#: Nested keys that never change a run's results (where data lives is not what it is), or
#: enter it only through `numerics` (``trainer.amp``: mixed precision runs on CUDA only).
#: The process count is not identity either: it keeps the global batch (docs/scaling.md,
#: "Distributed runs"), and every row records its ``world_size``.
NOT_IDENTITY_NESTED = (("trainer", "amp"), ("trainer", "devices"), ("trainer", "num_nodes"),
                       ("dataset", "root"), ("dataset", "download"), ("dataset", "manifest_dir"))


def numerics(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What changes the numbers of one config on one machine: the device type, and on the
    CPU torch's thread count (reductions are split across threads, so 1 and 2 threads
    give different floats: 0.4206 vs 0.4095 test accuracy after cycle 0 of the default
    run); on CUDA, mixed precision and deterministic kernels. ``cfg`` must hold the
    device and thread count actually used (the runner's `Experiment.cfg`)."""
    device = str(cfg.get("device", "cpu")).split(":")[0]
    if device == "cuda":
        return {"device": device, "amp": bool(cfg.get("trainer", {}).get("amp", True)),
                "deterministic": bool(cfg.get("deterministic", True))}
    return {"device": device, "torch_threads": cfg.get("torch_threads")}


def identity_config(cfg: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The part of a resolved config (plain dict) that determines one seed's results."""
    ident = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in NOT_IDENTITY}
    for section, key in NOT_IDENTITY_NESTED:
        if isinstance(ident.get(section), dict):
            ident[section].pop(key, None)
    ident["numerics"] = numerics(cfg)
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
