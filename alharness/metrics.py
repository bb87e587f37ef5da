"""Test metrics in numpy (no torch, so the report can reuse them).

Multi-class: accuracy. Multi-label: mean average precision over classes (the per-class
AP averaged) and pooled AP (all class-example pairs ranked together, Cluster-Margin's
Open Images metric, Sec. 5.1).
"""

from __future__ import annotations

import numpy as np


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == targets).mean())


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one ranking: mean precision at the rank of each relevant item (NaN if none)."""
    relevant = relevant.astype(bool)
    n_rel = int(relevant.sum())
    if n_rel == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].sum() / n_rel)


def mean_average_precision(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes that have at least one positive test example."""
    aps = [average_precision(probs[:, c], targets[:, c]) for c in range(targets.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")


def pooled_average_precision(probs: np.ndarray, targets: np.ndarray) -> float:
    return average_precision(probs.ravel(), targets.ravel())


def task_metrics(task: str, probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """All metrics for a task; the first key is the headline ``metric``."""
    if task == "multilabel":
        return {"mAP": mean_average_precision(probs, targets),
                "pooled_AP": pooled_average_precision(probs, targets)}
    return {"accuracy": accuracy(probs, targets)}
