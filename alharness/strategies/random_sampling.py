"""Random: a uniform sample of the unlabelled pool, the baseline every paper reports."""

from __future__ import annotations

import numpy as np

from alharness.strategies.base import SelectionContext, Strategy, register_strategy


@register_strategy("random")
class RandomSampling(Strategy):
    """Uniformly random ``budget`` unlabelled points, without replacement."""

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        k = min(budget, len(ctx.unlabelled))
        return ctx.rng.choice(ctx.unlabelled, size=k, replace=False)
