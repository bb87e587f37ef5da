"""Shared shape of the single-score uncertainty strategies: score every unlabelled point
from its probabilities and take the ``budget`` most uncertain (ties broken at random)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from alharness.ops.topk import top_k
from alharness.strategies.base import SelectionContext, Strategy


class UncertaintyStrategy(Strategy):
    """Top-``budget`` by `uncertainty`, computed on the unlabelled pool's probabilities."""

    needs: ClassVar[frozenset[str]] = frozenset({"probs"})

    @abstractmethod
    def uncertainty(self, probs: np.ndarray, task: str) -> np.ndarray:
        """Higher means more worth labelling."""

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        scores = self.uncertainty(ctx.probs("unlabelled"), ctx.task)
        return ctx.unlabelled[top_k(scores, budget, ctx.rng, largest=True)]
