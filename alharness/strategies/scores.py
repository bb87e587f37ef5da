"""Uncertainty scores from class probabilities; higher = more informative.

Multi-class rows are softmax distributions. Multi-label rows are independent per-class
sigmoids: each class is a binary problem, and the per-class scores are aggregated.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

EPS = 1e-12
#: How per-class scores of a multi-label row are combined.
MultilabelAggregate = Literal["min", "mean"]
MULTILABEL_AGGREGATES: tuple[str, ...] = get_args(MultilabelAggregate)


def _check_task(task: str) -> None:
    if task not in ("multiclass", "multilabel"):
        raise ValueError(f"task must be 'multiclass' or 'multilabel', got {task!r}")


def margin(probs: np.ndarray, task: str = "multiclass", aggregate: str = "min") -> np.ndarray:
    """Top-1 minus top-2 probability (small = uncertain); returned *as is*, not negated.

    Multi-label: per class the binary margin |p − (1 − p)| = |2p − 1|, aggregated over
    classes by ``min`` (the most uncertain class decides) or ``mean``.

    Cluster-Margin's Open Images setting is multi-label (Citovsky et al., 2021, Sec. 5.1),
    but which aggregate the paper uses could not be confirmed from its text (unverified).
    ``min`` is the default because with one class it is exactly the binary margin and an
    image stays informative if any one class is uncertain; ``mean`` is dominated by the
    many confidently absent classes once there are thousands of them.
    """
    _check_task(task)
    if task == "multilabel":
        per_class = np.abs(2.0 * probs - 1.0)
        if aggregate == "min":
            return per_class.min(axis=1)
        if aggregate == "mean":
            return per_class.mean(axis=1)
        raise ValueError(f"aggregate must be one of {MULTILABEL_AGGREGATES}, got {aggregate!r}")
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def least_confidence(probs: np.ndarray, task: str = "multiclass") -> np.ndarray:
    """1 − max probability. Multi-label: mean over classes of 1 − max(p, 1 − p)."""
    _check_task(task)
    if task == "multilabel":
        return (1.0 - np.maximum(probs, 1.0 - probs)).mean(axis=1)
    return 1.0 - probs.max(axis=1)


def entropy(probs: np.ndarray, task: str = "multiclass") -> np.ndarray:
    """Shannon entropy (nats). Multi-label: mean of the per-class binary entropies."""
    _check_task(task)
    p = np.clip(probs, EPS, 1.0)
    if task == "multilabel":
        q = np.clip(1.0 - probs, EPS, 1.0)
        return -(p * np.log(p) + q * np.log(q)).mean(axis=1)
    return -(p * np.log(p)).sum(axis=1)
