"""The results row (one per run × cycle) and how strategy variants are labelled.

Torch-free: the runner writes these rows and the report reads them.
"""

from __future__ import annotations

import json

import pandas as pd

#: Columns every row has, in file order. Strategies may add diagnostics (e.g. ``cover_radius``)
#: and multi-label runs add ``mAP`` / ``pooled_AP`` next to ``metric``.
ROW_COLUMNS = (
    "experiment", "run_id", "setting", "dataset", "backbone", "strategy", "strategy_params",
    "seed", "cycle", "n_labelled", "n_pool", "budget_initial", "budget_batch", "budget_cycles",
    "metric_name", "metric", "train_loss", "train_accuracy", "train_epochs", "train_seconds",
    "n_selected", "select_seconds", "prepare_seconds", "wall_seconds", "code_version",
    "config_hash",
)

#: Columns that identify a setting (runs in one setting can be compared).
SETTING_COLUMNS = ("dataset", "backbone", "budget_initial", "budget_batch", "budget_cycles")


def parse_params(text: object) -> dict:
    if isinstance(text, str) and text:
        return json.loads(text)
    return {}


def variant_labels(rows: pd.DataFrame) -> pd.Series:
    """A readable label per row: the strategy name plus the parameters that vary among
    runs of that strategy, e.g. ``cluster_margin(km=10, epsilon=0.5)``."""
    params = rows["strategy_params"].map(parse_params)
    labels = rows["strategy"].astype(str).copy()
    for strategy in rows["strategy"].unique():
        mask = rows["strategy"] == strategy
        dicts = params[mask]
        keys = sorted({k for d in dicts for k in d})
        varying = [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1]
        if varying:
            labels[mask] = [
                f"{strategy}(" + ", ".join(f"{k}={d.get(k)}" for k in varying) + ")" for d in dicts
            ]
    return labels
