"""A (partial) average-linkage dendrogram and its flat cuts, whatever HAC produced it.

Both HAC backends (`alharness.ops.hac` on a kNN graph, the exact one on all pairs) return
`Merges`; a cut at ε and the ε for a target mean cluster size are the same questions of
either, so they live here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Merges:
    """A (partial) dendrogram: cluster ``absorbed[i]`` joined ``kept[i]`` at ``height[i]``.

    Clusters are named by one of their points, so the merges are edges of a forest over
    the n points and any cut is a connected-components query (`cut`). Merges need not be
    in height order; a cut is meaningful because average linkage is monotone (a merge is
    never lower than the merges that built its two parts).
    """

    kept: np.ndarray  # (m,) int64
    absorbed: np.ndarray  # (m,) int64
    height: np.ndarray  # (m,) float64
    n: int


def cut(merges: Merges, epsilon: float) -> np.ndarray:
    """Cluster label (0 … c−1) of every point after the merges of height ≤ ``epsilon``."""
    sel = merges.height <= epsilon
    graph = coo_matrix((np.ones(int(sel.sum()), dtype=np.int8),
                        (merges.kept[sel], merges.absorbed[sel])), shape=(merges.n, merges.n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def threshold_for_mean_size(merges: Merges, target: float) -> float:
    """The smallest ε at which the mean cluster size n / #clusters is ≥ ``target``.

    That is the height of the (n − ⌊n / target⌋)-th lowest merge; 0 if ``target`` ≤ 1;
    inf if ``merges`` cannot get there (a graph whose connected components are still
    smaller on average). ``merges`` must hold every merge up to that height.
    """
    need = merges_needed(merges.n, target)
    if need <= 0:
        return 0.0
    if need > len(merges.height):
        return np.inf
    return float(np.partition(merges.height, need - 1)[need - 1])


def merges_needed(n: int, target: float) -> int:
    """Merges that take n points to a mean cluster size ≥ ``target``: n − ⌊n / target⌋."""
    return n - int(np.floor(n / target))
