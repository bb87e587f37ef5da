"""CoreSet (Sener & Savarese, ICLR 2018): choose the batch that best covers the pool in the
penultimate embedding space.

Implements the greedy k-center variant (Sec. 4.1, Algorithm 1), labelled points as the
initial centres, which is what both papers' baseline runs use; the robust MIP refinement
of Sec. 4.2 needs a commercial solver and is not implemented. Distances are Euclidean
on the raw (unnormalised) embeddings, as in the paper. Label-free, so multi-label
datasets need nothing special.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alharness.ops.kcenter import kcenter_greedy
from alharness.strategies.base import SelectionContext, Strategy, register_strategy


@register_strategy("coreset")
class CoreSet(Strategy):
    """Greedy k-center on embeddings; records the final cover radius as ``cover_radius``.

    The cover radius (largest distance from any pool point to its nearest labelled or
    picked point) is the quantity the paper's bound (Theorem 1) depends on, so it is a
    useful per-cycle diagnostic in the results rows. It is exactly 0 when every
    unlabelled point left is an exact copy of a labelled or picked one (then the batch is
    filled in pool order; see `kcenter_greedy`).
    """

    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        result = kcenter_greedy(ctx.embeddings("unlabelled"), budget,
                                centres=ctx.embeddings("labelled"), rng=ctx.rng)
        ctx.record("cover_radius", result.radius)
        return ctx.unlabelled[result.picks]
