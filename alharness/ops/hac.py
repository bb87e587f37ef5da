"""Average-linkage agglomerative clustering with a distance threshold, on a sparse graph.

Exact average-linkage HAC (SciPy's ``linkage(method="average")``) needs all n² distances.
This backend merges only clusters that are adjacent in a sparse graph — each point's k
nearest neighbours plus a few random *far candidates* from its neighbourhood
(`alharness.ops.knn`, `neighbour_graph`) — but merges them at their average linkage, with
the distances it does not know estimated from exact cluster statistics and completed when
it matters. The compiled kernel is `alharness.ops.hac_graph_kernel`.

**The algorithm.** A heap holds, for every cluster, its smallest pair key among its
adjacent clusters; the smallest key overall is processed next (one merge at a time). Every
adjacent pair keeps the sum, the sum of squares and the count of the point-pair distances
known between its two clusters (at first its graph edge); every cluster its size, centroid
and spread s² (mean squared distance to the centroid). Together they give the *exact*
mean squared distance over all point pairs of A × B: ‖μ_A − μ_B‖² + s²_A + s²_B, hence the
exact mean square of the unknown pairs. The key of a pair is its average linkage with the
unknown pairs at an estimated mean:

* ``FILL`` × √(their mean square) before anything else is known — slightly *low* (a mean
  is ≤ the root mean square; measured on the benchmark's embeddings the ratio mean/rms of
  a block is 0.96–0.99, so with 0.95 the key underestimates by 1–4 %), so a pair comes up
  a little early rather than being passed over;
* when such a pair reaches the top of the heap, its unknown distances are *computed*: all
  of them when the block has at most `EXACT_MAX` point pairs (the merge is then at the
  exact linkage), else a random sample of `SAMPLE_MAX` pairs gives the variance of the
  block's distances and the unknown mean becomes √(mean square − variance): the mean
  square is exact and the variance is a small correction, so the estimate is 10× tighter
  than the sample mean (median error 0.03 %, 95th percentile 0.2 % on the benchmark's
  cluster pairs, against 0.3 % / 1.2 % for the plain sample mean). The pair goes back to
  the heap with its new key and merges when it comes up again still smallest.
* when two clusters merge, pair blocks with at most `EAGER` point pairs are completed at
  once, and a pair that was complete is kept complete while that costs at most `UPKEEP`
  × its known part (so growing a cluster by a few points does not force recomputing a
  whole block later).

Outliers cannot move anyone else's linkage: every number a key uses belongs to the two
clusters of the pair (the previous backend filled every unknown pair with the graph's
largest edge, so one far point changed all clusters: ARI 0.185 on the issue's example).

Merging happens while linkage ≤ ε, the semantics of SciPy's
``fcluster(Z, t=ε, criterion="distance")`` (cophenetic distance ≤ t). Exact HAC puts the
whole pool in one cluster once ε reaches the pool's largest distance; give
``average_linkage`` an upper bound of it (``diameter``, e.g.
`alharness.ops.knn.diameter_bound`) to keep that limit. Ties: several pairs at the
smallest linkage make several valid dendrograms (SciPy's own answer depends on the input
order); ours is one of them, ties broken towards the smaller cluster id.

**What is exact, what is approximate.** On a complete graph (k = n − 1) every key is
exact and the dendrogram *is* SciPy's (the tests hold it equal). On a sparse graph:

* merges are restricted to adjacent clusters: two clusters that share no graph edge never
  merge (nothing measured says they are close). The far candidates make sizeable
  neighbouring clusters adjacent, which is what closes most of the gap to exact HAC;
* keys that are still estimates may order two merges wrongly, and merges of blocks above
  `EXACT_MAX` pairs happen at the sampled estimate, not the exact mean;
* with ``ivf``/``hnsw`` searches (the default above 20,000 points) some true neighbours are
  missed and replaced by farther points (IVF probes 16 cells: with 4, ARI against exact at
  mean size 20 on the digit embeddings fell from 0.95 to 0.87; with 16 it equals the exact
  search's).

Measured agreement with exact HAC at the exact ε for mean cluster sizes 5/10/20, k = 20 +
5 far candidates, 20,000 points, with and without a far outlier: `scripts/bench_hac.py`,
table in docs/strategies.md (Cluster-Margin).

**Cost.** Memory O(n·d + pairs): one 40-byte record per adjacent pair (≈ 20 per point),
one 48-byte record per cluster, centroids of non-singletons; no n² matrix, no per-pair
Python object. Time is dominated by visiting the pairs of the two merging clusters and by
the distances computed (a few hundred to a few thousand per point); both grow slowly with
n because the largest clusters do (average linkage on continuous density grows a few
large clusters). Measured (`scripts/bench_hac.py --scale`, d = 128, 2 shared cores, kNN
graph included): 10⁶ points 420 s / 2.7 GB, 2·10⁶ 899 s / 4.6 GB.

ε from a target mean cluster size is derived on this dendrogram
(`threshold_for_mean_size`); the run stops as soon as that height is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alharness.ops import hac_graph_kernel as kernel
from alharness.ops.dendrogram import Merges, cut, merges_needed, threshold_for_mean_size
from alharness.ops.knn import KnnGraph, knn_graph

__all__ = ["FAR", "GraphMerges", "Merges", "average_linkage", "cut", "graph_edges",
           "graph_merges", "merges_needed", "neighbour_graph", "threshold_for_mean_size"]

#: Random far candidates per point added to the kNN graph (`neighbour_graph`).
FAR = 5
#: Unknown pairs count as FILL × √(their mean square) until computed (module doc).
FILL = 0.95
#: Blocks of at most this many point pairs are computed in full when they come up; larger
#: ones are sampled.
EXACT_MAX = 4096
#: Point pairs drawn to estimate a large block's variance.
SAMPLE_MAX = 4096
#: A merge completes pair blocks of at most this many point pairs at once.
EAGER = 100
#: ... and keeps a complete pair complete while that costs at most UPKEEP × its known part.
UPKEEP = 1.0


@dataclass(frozen=True)
class GraphMerges(Merges):
    """`Merges` of the graph backend, with what it cost."""

    pairs: int  # adjacent point pairs it started from (the graph's undirected edges)
    completions: int  # pair blocks computed in full when they came up
    sampled: int  # pair blocks whose variance was sampled when they came up
    distances: int  # point-pair distances computed in all


def neighbour_graph(x: np.ndarray, k: int = 20, index: str = "auto", *, far: int = FAR,
                    seed: int = 0, gpu: int | None = None) -> KnnGraph:
    """The graph this backend is meant to run on: k nearest neighbours plus ``far`` random
    far candidates per point (`alharness.ops.knn.knn_graph`)."""
    return knn_graph(x, k, index, far=far, seed=seed, gpu=gpu)


def graph_edges(ids: np.ndarray, dists: np.ndarray) -> np.ndarray:
    """The graph's undirected edges as pair records (`hac_graph_kernel.PAIR`: fields
    ``u`` < ``v``, weight ``s``), each edge once: edge i–j exists if j is among i's
    neighbours or i among j's; ``-1`` ids and non-finite distances are gaps."""
    return kernel.build_pairs(np.ascontiguousarray(ids), np.ascontiguousarray(dists))


def graph_merges(x: np.ndarray, ids: np.ndarray, dists: np.ndarray,
                 max_height: float = np.inf, target_merges: int | None = None, *,
                 seed: int = 0, fill: float = FILL, exact_max: float = EXACT_MAX,
                 sample_max: int = SAMPLE_MAX, eager: float = EAGER,
                 upkeep: float = UPKEEP) -> GraphMerges:
    """Every merge of height ≤ ``max_height`` of the points ``x`` (n, d) on the graph
    ``ids``/``dists`` (row i: point i's neighbours, −1 = none).

    ``target_merges``: only the merges up to the height of the ``target_merges``-th lowest
    are needed (`threshold_for_mean_size`): once that many are done, that height becomes
    ``max_height``. ``seed`` fixes the variance samples. The other arguments are the
    module constants (for benchmarks).
    """
    x = np.ascontiguousarray(x)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    pairs = graph_edges(ids, dists)
    kept, absorbed, height, stats = kernel.agglomerate(
        x, pairs, float(max_height), -1 if target_merges is None else int(target_merges),
        float(fill), float(eager), float(upkeep), np.inf, float(exact_max),
        int(sample_max), int(seed))
    return GraphMerges(kept.astype(np.int64), absorbed.astype(np.int64), height, len(x),
                       len(pairs), int(stats[kernel.COMPLETIONS]),
                       int(stats[kernel.SAMPLED]), int(stats[kernel.DISTANCES]))


def average_linkage(x: np.ndarray, ids: np.ndarray, dists: np.ndarray,
                    epsilon: float | None = None, target_cluster_size: float | None = None,
                    diameter: float = np.inf, *, seed: int = 0) -> tuple[np.ndarray, float]:
    """Flat average-linkage clusters of the points ``x`` on a graph: ``(labels, ε used)``.

    Give ``epsilon`` (merge while linkage ≤ ε) or ``target_cluster_size`` (ε from
    `threshold_for_mean_size` on this dendrogram). ``diameter``: an upper bound of every
    pairwise distance in the pool; from ε ≥ it on every average linkage is ≤ ε, so the
    pool is one cluster as in exact HAC (also where a target size is beyond what the
    graph can join).
    """
    if (epsilon is None) == (target_cluster_size is None):
        raise ValueError("give exactly one of epsilon and target_cluster_size")
    n = ids.shape[0]
    if epsilon is not None and epsilon >= diameter:
        return np.zeros(n, dtype=np.int64), float(epsilon)
    if epsilon is not None or merges_needed(n, target_cluster_size) <= 0:
        epsilon = 0.0 if epsilon is None else float(epsilon)
        return cut(graph_merges(x, ids, dists, epsilon, seed=seed), epsilon), epsilon
    target = float(target_cluster_size)
    merges = graph_merges(x, ids, dists, target_merges=merges_needed(n, target), seed=seed)
    epsilon = threshold_for_mean_size(merges, target)
    if epsilon == np.inf and diameter < np.inf:  # beyond the graph's components
        return np.zeros(n, dtype=np.int64), float(diameter)
    return cut(merges, epsilon), epsilon
