"""Entropy (Shannon, as used for AL by Settles, 2009): the most spread-out prediction."""

from __future__ import annotations

import numpy as np

from alharness.strategies import scores
from alharness.strategies.base import register_strategy
from alharness.strategies.uncertainty import UncertaintyStrategy


@register_strategy("entropy")
class Entropy(UncertaintyStrategy):
    """Pick the points whose predictive distribution has the highest entropy."""

    def uncertainty(self, probs: np.ndarray, task: str) -> np.ndarray:
        return scores.entropy(probs, task)
