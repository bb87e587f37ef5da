"""CDAL, core-set variant (Agarwal, Arora, Anand & Arora, ECCV 2020, arXiv 2008.05723):
furthest-first selection where the distance between two points is their *contextual
diversity*, the symmetric KL divergence between the model's class-probability vectors
(Sec. 3, Eq. 2–3; Sec. 3.2 for the core-set selection).

For segmentation the paper compares class-conditional, entropy-weighted averages of
region probabilities; an image classifier has one region, the whole image, so (as in the
classification port ALFA-Mix compares with, ``query_strategies/cdal_sampling.py``) the
vectors are the predicted probabilities themselves, and the divergence is
d(p, q) = ½ (KL(p‖q) + KL(q‖p)) = ½ Σ_c (p_c − q_c)(log p_c − log q_c).

Unlike that port, the probabilities are used as the model gives them (the port applied a
softmax to probabilities, flattening every vector towards uniform), and distances are
computed in blocks instead of Python loops over points.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alharness.ops.mindist import FactorisedPoints, min_sq_dists, single_threaded_blas
from alharness.strategies.base import SelectionContext, Strategy, register_strategy

#: Probabilities are clipped here before the log, so a class with p = 0 costs a finite KL.
EPS = 1e-8


class DivergencePoints:
    """Points under ½·symmetric-KL, in the form ``d(x, y) = n_x + n_y − 2 a_x·b_y``.

    With ℓ(p) = log p (categorical) or logit p (per-class Bernoulli, multi-label):
    ½ (p − q)·(ℓ(p) − ℓ(q)) = ½ p·ℓ(p) + ½ q·ℓ(q) − ½ (p·ℓ(q) + ℓ(p)·q), so
    n = ½ p·ℓ(p), a = [p, ℓ(p)] (the point as a query) and b = ¼ [ℓ(p), p] (the point as a
    centre). The divergence is not a Euclidean distance (the cross term is indefinite),
    but it has the same norm-plus-product shape, so the blocked kernel of
    `alharness.ops.mindist.min_sq_dists` computes it without an (n × m) matrix.
    """

    def __init__(self, probs: np.ndarray, task: str = "multiclass") -> None:
        p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
        if task == "multilabel":
            p = np.minimum(p, 1.0 - EPS)
            ell = np.log(p) - np.log1p(-p)
        else:
            p = p / p.sum(axis=1, keepdims=True)
            ell = np.log(p)
        self.norms = (0.5 * np.einsum("ij,ij->i", p, ell)).astype(np.float32)
        self.query = FactorisedPoints.dense(np.concatenate([p, ell], axis=1))
        self.centre = FactorisedPoints.dense(0.25 * np.concatenate([ell, p], axis=1))

    def __len__(self) -> int:
        return len(self.norms)

    def min_divergence(self, centres: DivergencePoints, out: np.ndarray | None = None) -> np.ndarray:
        """Divergence from every point to its nearest of ``centres`` (min-ed into ``out``)."""
        return min_sq_dists(self.query, centres.centre, out, self.norms,
                            centre_norms=centres.norms)


def furthest_first(points: DivergencePoints, k: int, centres: DivergencePoints | None,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Gonzalez's furthest-first traversal under the divergence: repeatedly pick the point
    farthest from every centre (``centres`` first, then the picks). Returns the picks and
    the final cover radius. Memory O(n·C); each pick costs one (n × 2C) mat-vec.

    Greedy k-center (`alharness.ops.kcenter`) cannot be reused as is: it assumes Euclidean
    distances on the points themselves, and this divergence represents a point differently
    as a query and as a centre.
    """
    n = len(points)
    k = min(int(k), n)
    bound = np.full(n, np.inf, dtype=np.float32)
    if centres is not None and len(centres):
        points.min_divergence(centres, bound)
    picks = np.empty(k, dtype=np.int64)
    query, centre, norms = points.query.features, points.centre.features, points.norms
    to_pick = np.empty(n, dtype=np.float32)
    with single_threaded_blas():
        for t in range(k):
            i = int(np.argmax(bound)) if np.isfinite(bound[0]) else int(rng.integers(n))
            picks[t] = i
            np.matmul(query, centre[i], out=to_pick)  # d(·, i) = n + n_i − 2 a·b_i
            to_pick *= -2.0
            to_pick += norms
            to_pick += norms[i]
            np.minimum(bound, to_pick, out=bound)
            bound[i] = 0.0
    return picks, max(float(bound.max()), 0.0) if n else 0.0


@register_strategy("cdal")
class CDAL(Strategy):
    """Furthest-first on contextual diversity, labelled points as the initial centres.

    Records ``cdal_radius``, the largest divergence from an unlabelled point to its
    nearest labelled or picked point after the selection.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"probs"})

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        pool = DivergencePoints(ctx.probs("unlabelled"), ctx.task)
        labelled = DivergencePoints(ctx.probs("labelled"), ctx.task) if len(ctx.labelled) else None
        picks, radius = furthest_first(pool, budget, labelled, ctx.rng)
        ctx.record("cdal_radius", radius)
        return ctx.unlabelled[picks]
