"""Confidence ratio: the smallest ratio between the two most likely classes' probabilities
(p₂ / p₁ largest), one of the classic uncertainty scores (Munro, "Human-in-the-Loop
Machine Learning", 2021, Ch. 3)."""

from __future__ import annotations

import numpy as np

from alharness.ops.topk import top_k
from alharness.strategies.base import SelectionContext, Strategy, register_strategy


@register_strategy("confidence_ratio")
class ConfidenceRatio(Strategy):
    """Label the points whose runner-up class is closest to the top class, in ratio."""

    needs = frozenset({"probs"})  # the runner computes only what is declared

    def __init__(self, temperature: float = 1.0) -> None:  # = configs/strategy/confidence_ratio.yaml
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        probs = ctx.probs("unlabelled") ** (1.0 / self.temperature)
        top2 = np.sort(probs, axis=1)[:, -2:]
        ratio = top2[:, 0] / np.maximum(top2[:, 1], 1e-12)
        return ctx.unlabelled[top_k(ratio, budget, ctx.rng, largest=True)]
