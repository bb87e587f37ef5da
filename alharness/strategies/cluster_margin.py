"""Cluster-Margin (Citovsky et al., "Batch Active Learning at Scale", NeurIPS 2021,
arXiv 2107.14263, Sec. 3 and Algorithm 1).

Once, in the first cycle (after the model is trained on the seed set), the whole pool is
embedded and clustered by average-linkage HAC with distance threshold ε: exact
(`alharness.ops.hac_exact`, nearest-neighbour chains, no n² matrix) for pools up to
``hac_exact_max_n`` points, above that on a kNN graph (`alharness.ops.hac`, merges at
exact or estimated average linkage, measured against exact in docs/strategies.md). The cluster ids live in
``ctx.cache``, which the runner checkpoints, so a resumed run reuses them and never
re-clusters. Every cycle: the M = ⌈km·budget⌉ lowest-margin unlabelled points are the
candidates; they are grouped by cluster, groups are visited smallest first, and the
batch is filled round-robin with one uniformly random candidate per group per round.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from annotated_types import Ge

from alharness.bounds import Count, NonNegativeNumber, Positive
from alharness.config.messages import contract
from alharness.errors import ConfigError, SelectionError
from alharness.ops.hac import average_linkage, neighbour_graph
from alharness.ops.hac_exact import exact_average_linkage
from alharness.ops.knn import IndexType, diameter_bound
from alharness.ops.topk import top_k
from alharness.strategies import scores
from alharness.strategies.base import SelectionContext, Strategy, register_strategy

#: Key of this strategy's entry in the run's ``ctx.cache``.
CACHE_KEY = "cluster_margin"
#: Pool size up to which ``hac=auto`` runs exact HAC: measured (docs/strategies.md) 39 s at
#: 20,000 × 512, 86 s at 40,000, 216 s at 50,000 on 2 shared cores (quadratic beyond).
HAC_EXACT_MAX_N = 40_000
HacBackend = Literal["auto", "exact", "graph"]

log = logging.getLogger("alharness")


def round_robin(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``k`` items drawn round-robin over ``groups`` (one group id per item).

    Groups are visited in ascending order of their item count (ties in random order);
    each round takes one uniformly random not-yet-taken item from every group that has
    one left, so no group gets a second item before every group has its first.
    Vectorised: each item gets a random rank inside its group (its round), and items are
    ordered by (round, group order); the first ``k`` are the batch.
    """
    _, group, counts = np.unique(groups, return_inverse=True, return_counts=True)
    group_order = np.empty(len(counts), dtype=np.int64)
    group_order[np.lexsort((rng.permutation(len(counts)), counts))] = np.arange(len(counts))
    shuffled = rng.permutation(len(groups))
    grouped = shuffled[np.argsort(group[shuffled], kind="stable")]  # by group, random inside
    round_of = np.empty(len(groups), dtype=np.int64)
    round_of[grouped] = np.arange(len(groups)) - (np.cumsum(counts) - counts)[group[grouped]]
    return np.lexsort((group_order[group], round_of))[:k]


def cuda_device(device: Any) -> int | None:
    """The CUDA device number of a torch device (or its string), −1 for plain "cuda" (the
    current one), None for anything else."""
    kind, _, number = str(device).partition(":")
    if kind != "cuda":
        return None
    return int(number) if number else -1


@register_strategy("cluster_margin")
class ClusterMargin(Strategy):
    """Margin candidates, diversified by round-robin over HAC clusters of the pool.

    Parameters (``configs/strategy/cluster_margin.yaml`` says where each comes from):

    * ``km`` — candidates per batch slot, M = ⌈km·budget⌉. The paper uses 10 on Open
      Images and 1.25 on CIFAR-10/100 and SVHN; 1.25 is the default because those are
      the pool sizes this harness runs most. km = 1 is exactly Margin.
    * ``epsilon`` — HAC distance threshold: clusters merge while their average linkage
      is ≤ ε (SciPy ``fcluster(criterion="distance")`` semantics); ε ≥ the pool's
      diameter bound (`alharness.ops.knn.diameter_bound`) is one cluster. Takes
      precedence over ``target_cluster_size`` when set, so ``strategy.epsilon=…`` sweeps
      work without unsetting the other.
    * ``target_cluster_size`` — used when ``epsilon`` is null: ε is the smallest merge
      height at which the mean cluster size (pool size / clusters) reaches this value
      (`alharness.ops.hac.threshold_for_mean_size`); one cluster if the kNN graph's
      components are smaller than that on average.
    * ``hac`` — ``exact`` (`alharness.ops.hac_exact`: SciPy's average linkage, O(n²·d)
      time, O(n·d) memory), ``graph`` (`alharness.ops.hac`: merges of kNN-adjacent
      clusters, near-linear) or ``auto``: exact while the pool has at most
      ``hac_exact_max_n`` points, graph above. The backend that ran is logged and
      recorded in the rows (``cm_hac``); ε from ``target_cluster_size`` is derived on it.
    * ``knn_k``, ``knn_index`` — the graph the graph backend runs on: k nearest
      neighbours plus a few random far candidates per point
      (`alharness.ops.hac.neighbour_graph`).
    * ``multilabel_aggregate`` — ``min``/``mean`` of the per-class binary margins on
      multi-label datasets (`alharness.strategies.scores.margin`).

    Group "size" in the smallest-first order is the number of *candidates* a cluster
    holds, not its size in the pool: Algorithm 1 sorts C_M, the clusters as restricted
    to the candidate set, and the candidate count is also what decides when a group is
    exhausted, so ordering by it gives the last, partial round to the clusters with the
    fewest uncertain points — the rare regions the method is meant to reach.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def __init__(self, km: Annotated[float, Ge(1)] = 1.25,
                 epsilon: NonNegativeNumber | None = None,
                 target_cluster_size: Positive | None = 10.0, hac: HacBackend = "auto",
                 hac_exact_max_n: Count = HAC_EXACT_MAX_N, knn_k: Count = 20,
                 knn_index: IndexType = "auto",
                 multilabel_aggregate: scores.MultilabelAggregate = "min") -> None:
        # Ranges and choices are in the hints (checked by the config schema); only the
        # rule between two parameters is checked here.
        if epsilon is None and target_cluster_size is None:
            raise ConfigError(contract(
                "strategy.epsilon", "neither it nor strategy.target_cluster_size is set", None,
                "a distance ≥ 0, or strategy.target_cluster_size > 0 to derive it"))
        self.km = km
        self.epsilon = epsilon
        self.target_cluster_size = target_cluster_size
        self.hac = hac
        self.hac_exact_max_n = hac_exact_max_n
        self.knn_k = knn_k
        self.knn_index = knn_index
        self.multilabel_aggregate = multilabel_aggregate

    def prepare(self, ctx: SelectionContext) -> None:
        """Cluster the pool the first time only; later cycles (and resumes) reuse it."""
        state = ctx.cache.get(CACHE_KEY)
        if state is None:
            state = self.cluster(ctx.embeddings("pool"), gpu=cuda_device(ctx.device))
            state["cycle"] = ctx.cycle
            ctx.cache[CACHE_KEY] = state
        elif len(state["labels"]) != ctx.pool_size:
            raise SelectionError(f"cluster_margin: the cached clustering covers "
                                 f"{len(state['labels'])} points but the pool has "
                                 f"{ctx.pool_size}; the checkpoint belongs to another pool")
        clusters = int(state["labels"].max()) + 1 if len(state["labels"]) else 0
        ctx.record("cm_clusters", clusters)
        ctx.record("cm_mean_cluster_size", len(state["labels"]) / max(clusters, 1))
        ctx.record("cm_epsilon", state["epsilon"])
        ctx.record("cm_hac", state.get("hac", "graph"))  # caches from before the option: graph
        ctx.record("cm_clustered_at_cycle", state["cycle"])

    def backend(self, n: int) -> tuple[str, str]:
        """The HAC backend for a pool of ``n`` points, and why (for the log)."""
        if self.hac != "auto":
            return self.hac, f"strategy.hac={self.hac}"
        if n <= self.hac_exact_max_n:
            return "exact", f"hac=auto and the pool ({n:,}) ≤ hac_exact_max_n ({self.hac_exact_max_n:,})"
        return "graph", f"hac=auto and the pool ({n:,}) > hac_exact_max_n ({self.hac_exact_max_n:,})"

    def cluster(self, embeddings: np.ndarray, gpu: int | None = None) -> dict[str, Any]:
        """HAC cluster ids of every pool point, the ε used and the backend that ran (the
        strategy's cache entry).

        ``gpu``: the CUDA device the model ran on, if any; the graph backend's exact kNN
        search then runs there when faiss has GPU support (`alharness.ops.knn.knn_graph`).
        The k-means and far-candidate seed is fixed: the clustering depends on the
        embeddings only, and drawing it from ``ctx.rng`` would shift every later random
        choice of the cycle.
        """
        bad = int((~np.isfinite(embeddings).all(axis=1)).sum())
        if bad:
            raise SelectionError(f"cluster_margin: {bad:,} of the {len(embeddings):,} pool "
                                 "embeddings contain NaN or inf (did training diverge? see "
                                 "train_loss); HAC cannot cluster them")
        target = None if self.epsilon is not None else self.target_cluster_size
        backend, why = self.backend(len(embeddings))
        log.info("cluster_margin: %s average-linkage HAC of %s points (%s)", backend,
                 f"{len(embeddings):,}", why)
        if backend == "exact":
            labels, epsilon = exact_average_linkage(embeddings, self.epsilon, target)
            index = None
        else:
            graph = neighbour_graph(embeddings, self.knn_k, self.knn_index, seed=0, gpu=gpu)
            labels, epsilon = average_linkage(embeddings, graph.ids, graph.dists, self.epsilon,
                                              target, diameter=diameter_bound(embeddings))
            index = graph.index
        dtype = np.int32 if len(labels) < 2**31 else np.int64
        return {"labels": labels.astype(dtype), "epsilon": epsilon, "hac": backend,
                "knn_index": index}

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        if CACHE_KEY not in ctx.cache:  # a caller that skipped `prepare`
            self.prepare(ctx)
        labels = ctx.cache[CACHE_KEY]["labels"]
        margin = scores.margin(ctx.probs("unlabelled"), ctx.task, self.multilabel_aggregate)
        wanted = math.ceil(round(self.km * budget, 9))  # round: 1.1·10 is 11.000000000000002
        # Same call and random stream as Margin, so km = 1 reproduces its batch exactly.
        candidates = top_k(-margin, wanted, ctx.rng, largest=True)
        ctx.record("cm_candidates", len(candidates))
        if len(candidates) <= budget:
            return ctx.unlabelled[candidates]
        groups = labels[ctx.unlabelled[candidates]]
        ctx.record("cm_candidate_clusters", len(np.unique(groups)))
        return ctx.unlabelled[candidates[round_robin(groups, budget, ctx.rng)]]
