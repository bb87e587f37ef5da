"""Least confidence (Lewis & Gale, 1994): the lowest top-1 probability."""

from __future__ import annotations

import numpy as np

from alharness.strategies import scores
from alharness.strategies.base import register_strategy
from alharness.strategies.uncertainty import UncertaintyStrategy


@register_strategy("least_confidence")
class LeastConfidence(UncertaintyStrategy):
    """Pick the points whose most likely class has the lowest probability."""

    def uncertainty(self, probs: np.ndarray, task: str) -> np.ndarray:
        return scores.least_confidence(probs, task)
