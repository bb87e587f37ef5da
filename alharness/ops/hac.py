"""Average-linkage agglomerative clustering with a distance threshold, on a sparse graph.

Exact average-linkage HAC needs all n² distances. Here the input is a sparse graph (a
k-nearest-neighbour graph, `alharness.ops.knn`) whose edge weights are Euclidean
distances, and merging is restricted to it, as in RAC (Sumengen et al. 2021, "Scaling
Hierarchical Agglomerative Clustering to Billion-sized Datasets"): two clusters joined
by at least one edge have the linkage

    linkage(A, B) = (Σ_{edges i–j, i ∈ A, j ∈ B} d_ij + (|A|·|B| − #edges(A, B))·D) / (|A|·|B|)
                  = D − Σ_edges (D − d_ij) / (|A|·|B|)

— the mean pairwise distance with the pairs the graph does not know set to D, the
largest edge weight (RAC's "sum of edge similarities / (|A|·|B|)" with similarity
D − d, missing pairs at similarity 0) — and two clusters with no edge between them
never merge: nothing the graph measured says they are close. On a complete graph there
are no missing pairs and this *is* SciPy's ``linkage(method="average")``. The linkage is
*reducible* (linkage(A ∪ B, C) is a size-weighted mean of linkage(A, C) and
linkage(B, C), with a part that has no edge to C counting as D ≥ every linkage, so it
is ≥ the smaller of them), hence merging every reciprocal-nearest-neighbour pair at once
reproduces the sequential greedy dendrogram (RAC). `merge_rounds` runs those rounds,
vectorised over the edge list (ufunc.at, unique, bincount); rounds repeat until no
reciprocal pair is within ε. Below D this is exactly average linkage of the completed
matrix (every pair without an edge at D); from D up, where the completed matrix would
join everything, the graph's connected components stay apart.

Merging happens while linkage ≤ ε, the semantics of SciPy's
``fcluster(Z, t=ε, criterion="distance")`` (cophenetic distance ≤ t). Exact HAC puts
the whole pool in one cluster once ε reaches the pool's largest distance; give
``average_linkage`` an upper bound of it (``diameter``, e.g. `alharness.ops.knn.diameter_bound`)
to keep that limit.

Ties: when several pairs share the smallest linkage, average-linkage HAC has more than
one valid dendrogram (SciPy's own answer then depends on the input order). Ours is one
of them — every merge is at the current smallest linkage — with ties broken towards
the smallest point id; without ties it is *the* dendrogram.

Where this differs from exact HAC on large pools (k ≪ n):

* Missing edges. It is exact HAC of the completed matrix, not of the true distances.
  Non-neighbour pairs count as D, which overstates the distance of non-neighbours in
  dense regions and understates it for far-apart ones, so a given ε can give different
  clusters than exact HAC. A large cluster is linked to a point only through the
  point's ~k graph edges, so clusters much larger than k form only when ε nears D; and
  groups that share no edge (the graph's components) never merge below ``diameter``,
  even where exact HAC would join them at some ε between D and the diameter. A small
  ``k`` makes all of this stronger.
* Approximate neighbours. With ``ivf``/``hnsw`` (the default above 20,000 points) some
  true neighbours are missed (recall < 1) and replaced by farther points; a missed
  edge is treated as D like any other missing pair, so clusters can come out split or
  merge later than on the exact graph.

Deriving ε from a target mean cluster size on the same graph (`threshold_for_mean_size`)
keeps the cluster granularity meaningful anyway. All of this vanishes with an exact
search as k → n − 1, and the tests hold the complete-graph case equal to SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alharness.ops.dendrogram import Merges, cut, merges_needed, threshold_for_mean_size

__all__ = ["GraphMerges", "Merges", "average_linkage", "cut", "graph_edges", "merge_rounds",
           "merges_needed", "threshold_for_mean_size"]


@dataclass(frozen=True)
class GraphMerges(Merges):
    """`Merges` of the graph backend, with what it assumed and how long it took."""

    far: float  # D: the distance given to unknown pairs of linked clusters (module doc)
    rounds: int


def graph_edges(ids: np.ndarray, dists: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edge list ``(lo, hi, weight)`` of a kNN graph, each edge once.

    Edge i–j exists if j is among i's neighbours or i among j's; ``-1`` ids are gaps.
    """
    n = ids.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1])
    cols = ids.ravel().astype(np.int64)
    w = dists.ravel().astype(np.float64)
    ok = (cols >= 0) & (cols != rows) & np.isfinite(w)
    rows, cols, w = rows[ok], cols[ok], w[ok]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first], hi[first], w[first]


def merge_rounds(lo: np.ndarray, hi: np.ndarray, weight: np.ndarray, n: int,
                 max_height: float = np.inf, target_merges: int | None = None) -> GraphMerges:
    """Every average-linkage merge of height ≤ ``max_height`` on the graph, by RAC rounds.

    Per round: each cluster's nearest neighbour (smallest linkage, ties to the smallest
    id, so the globally closest pair is always reciprocal and every round merges);
    reciprocal pairs with linkage ≤ ``max_height`` merge; edges of merged clusters are
    relabelled and coalesced (weight sums and edge counts add). A cluster whose nearest
    linkage exceeds ``max_height`` is final (reducibility: it can only get farther), so
    its edges are dropped. Memory is O(n + edges). With ``max_height=inf`` the result is
    the graph's whole dendrogram, down to its connected components.

    ``target_merges`` (with ``max_height=inf``): only the merges up to the height of the
    ``target_merges``-th lowest one are needed (`threshold_for_mean_size`). As soon as
    that height is known for certain — that many merges are at most the current smallest
    linkage, below which no later merge can fall — it becomes ``max_height``, and the
    rest of the run prunes as above instead of building the whole dendrogram.
    """
    a, b = lo.astype(np.int64), hi.astype(np.int64)
    total, count = weight.astype(np.float64), np.ones(len(a))
    link = total.copy()  # singletons: the edge weight itself
    far = _far(total)
    size = np.ones(n)
    rep = np.arange(n, dtype=np.int64)  # alive clusters map to themselves
    merged = np.zeros(n, dtype=bool)
    kept, absorbed, heights = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]
    rounds = 0
    while len(a):
        if target_merges is not None and max_height == np.inf:
            max_height = _known_height(heights, target_merges, float(link.min()))
        best = np.full(n, np.inf)
        np.minimum.at(best, a, link)
        np.minimum.at(best, b, link)
        best_a, best_b = best[a], best[b]
        if max_height < np.inf:
            live = (best_a <= max_height) & (best_b <= max_height)
            if not live.all():
                a, b, total, count, link = a[live], b[live], total[live], count[live], link[live]
                best_a, best_b = best_a[live], best_b[live]
                if not len(a):
                    break
        nearest = np.full(n, n, dtype=np.int64)
        at_a, at_b = link == best_a, link == best_b
        np.minimum.at(nearest, a[at_a], b[at_a])
        np.minimum.at(nearest, b[at_b], a[at_b])
        u = np.flatnonzero(nearest < n)
        v = nearest[u]
        pair = (u < v) & (nearest[v] == u)
        u, v = u[pair], v[pair]
        rounds += 1
        kept.append(u)
        absorbed.append(v)
        heights.append(best[u])
        size[u] += size[v]
        rep[v] = u
        merged[u] = merged[v] = True
        touched = merged[a] | merged[b]
        merged[u] = merged[v] = False
        # Relabel the merged clusters' edges and add up parallel ones; the rest are unchanged.
        ta, tb = rep[a[touched]], rep[b[touched]]
        inner = ta != tb
        tlo, thi = np.minimum(ta, tb)[inner], np.maximum(ta, tb)[inner]
        keys, slot = np.unique(tlo * n + thi, return_inverse=True)
        new_a, new_b = keys // n, keys % n
        new_total = np.bincount(slot, total[touched][inner], len(keys))
        new_count = np.bincount(slot, count[touched][inner], len(keys))
        pairs = size[new_a] * size[new_b]
        stay = ~touched
        a, b = np.concatenate([a[stay], new_a]), np.concatenate([b[stay], new_b])
        total = np.concatenate([total[stay], new_total])
        count = np.concatenate([count[stay], new_count])
        link = np.concatenate([link[stay], (new_total + (pairs - new_count) * far) / pairs])
    return GraphMerges(np.concatenate(kept), np.concatenate(absorbed),
                       np.concatenate(heights), n, far, rounds)


def _known_height(heights: list[np.ndarray], rank: int, floor: float) -> float:
    """The ``rank``-th lowest merge height if already certain, else inf. Every later merge
    is at height ≥ ``floor`` (the smallest current linkage), so it is certain once
    ``rank`` recorded merges are ≤ ``floor``."""
    done = sum(len(h) for h in heights)
    if done < rank:
        return np.inf
    recorded = np.concatenate(heights)
    if np.count_nonzero(recorded <= floor) < rank:
        return np.inf
    return float(np.partition(recorded, rank - 1)[rank - 1])


def average_linkage(ids: np.ndarray, dists: np.ndarray, epsilon: float | None = None,
                    target_cluster_size: float | None = None,
                    diameter: float = np.inf) -> tuple[np.ndarray, float]:
    """Flat average-linkage clusters of a kNN graph: ``(labels, epsilon used)``.

    Give ``epsilon`` (merge while linkage ≤ ε) or ``target_cluster_size`` (ε from
    `threshold_for_mean_size`). ``diameter``: an upper bound of every pairwise distance
    in the pool; from ε ≥ it on every average linkage is ≤ ε, so the pool is one cluster
    as in exact HAC (also where a target size is beyond what the graph can join).
    """
    if (epsilon is None) == (target_cluster_size is None):
        raise ValueError("give exactly one of epsilon and target_cluster_size")
    n = ids.shape[0]
    if epsilon is not None and epsilon >= diameter:
        return np.zeros(n, dtype=np.int64), float(epsilon)
    lo, hi, w = graph_edges(ids, dists)
    if epsilon is not None or merges_needed(n, target_cluster_size) <= 0:
        epsilon = 0.0 if epsilon is None else float(epsilon)
        return cut(merge_rounds(lo, hi, w, n, epsilon), epsilon), epsilon
    target = float(target_cluster_size)
    merges = merge_rounds(lo, hi, w, n, target_merges=merges_needed(n, target))
    epsilon = threshold_for_mean_size(merges, target)
    if epsilon == np.inf and diameter < np.inf:  # beyond the graph's components
        return np.zeros(n, dtype=np.int64), float(diameter)
    return cut(merges, epsilon), epsilon


def _far(weight: np.ndarray) -> float:
    return float(weight.max()) if len(weight) else np.inf
