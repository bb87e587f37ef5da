"""BADGE: Batch Active learning by Diverse Gradient Embeddings (Ash et al., ICLR 2020).

Each unlabelled point is represented by the gradient of the loss at its own predicted
label with respect to the last layer's weights, g = (onehot(ŷ) − p) ⊗ h (Sec. 3): its
norm measures uncertainty, its direction what the point would teach. The batch is a
k-means++ seeding of those vectors (Algorithm 1), which trades both off.

The (C·d)-dimensional vectors are never built: `SelectionContext.grad_embeddings` gives
them factorised and `alharness.ops.kmeans_pp` works on that form (the reference code's
dense float64 matrix is ~10 GB for CIFAR-100). Readings chosen: the first centre is the
largest gradient norm and later ones are D²-sampled, as in the official code (the paper
only says "k-means++ seeding"); no Lloyd iterations. Multi-label: per-class sigmoid with
binary cross-entropy gives the same form with ŷ_c = [p_c > 0.5], i.e. (ŷ − p) ⊗ h.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alharness.ops.kmeans_pp import kmeans_pp
from alharness.ops.mindist import FactorisedPoints
from alharness.strategies.base import SelectionContext, Strategy, register_strategy


@register_strategy("badge")
class BADGE(Strategy):
    """k-means++ seeding on factorised gradient embeddings of the unlabelled pool."""

    needs: ClassVar[frozenset[str]] = frozenset({"grad_embeddings"})

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        grads = ctx.grad_embeddings("unlabelled")
        picks = kmeans_pp(FactorisedPoints(grads.scale, grads.features), budget, ctx.rng)
        return ctx.unlabelled[picks]
