"""A seeded random subset of the unlabelled pool, the candidate set of methods that score
only part of the pool per cycle: Learning Loss (Yoo & Kweon, CVPR 2019, Sec. 4.1: 10,000
random unlabelled points, following Beluch et al. 2018) and CoreGCN (Caramalau et al.,
CVPR 2021, Sec. 4: the same ``SUBSET = 10000``)."""

from __future__ import annotations

import numpy as np

from alharness.strategies.base import SelectionContext


def unlabelled_subset(ctx: SelectionContext, subset: int | None, budget: int) -> np.ndarray:
    """Sorted positions into ``ctx.unlabelled`` of ``subset`` random unlabelled points
    (never fewer than ``budget``, so a batch can always be filled); all of them when None."""
    n = len(ctx.unlabelled)
    if subset is None or max(subset, budget) >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(ctx.rng.choice(n, size=max(subset, budget), replace=False))
