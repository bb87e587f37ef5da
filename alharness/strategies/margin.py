"""Margin (Scheffer et al., 2001): the smallest gap between the top two class probabilities.

Cluster-Margin's main baseline and its candidate score (Citovsky et al., 2021, Sec. 3).
"""

from __future__ import annotations

import numpy as np

from alharness.strategies import scores
from alharness.strategies.base import register_strategy
from alharness.strategies.uncertainty import UncertaintyStrategy


@register_strategy("margin")
class Margin(UncertaintyStrategy):
    """Pick the points with the smallest top-1 − top-2 probability gap.

    ``multilabel_aggregate`` (``min`` or ``mean``) combines the per-class binary margins
    |2p − 1| on multi-label datasets; see `alharness.strategies.scores.margin`.
    """

    def __init__(self, multilabel_aggregate: scores.MultilabelAggregate = "min") -> None:
        self.multilabel_aggregate = multilabel_aggregate

    def uncertainty(self, probs: np.ndarray, task: str) -> np.ndarray:
        return -scores.margin(probs, task, self.multilabel_aggregate)
