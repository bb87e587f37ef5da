"""Graph average-linkage HAC (`alharness.ops.hac`): equal to SciPy's exact average linkage
on complete graphs, close to it on sparse graphs of embedding-like pools where the old
"unknown pairs = longest edge" backend is far off, deaf to a far outlier, the ≤ ε cut
semantics and ε from a target mean cluster size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import cdist, pdist
from sklearn.metrics import adjusted_rand_score

from alharness.data.mixture import embedding_mixture
from alharness.ops.hac import (
    average_linkage,
    cut,
    graph_edges,
    graph_merges,
    merges_needed,
    neighbour_graph,
    threshold_for_mean_size,
)
from alharness.ops.knn import diameter_bound, knn_graph


def same_partition(p: np.ndarray, q: np.ndarray) -> bool:
    """Equal as partitions: the label pairs are a bijection."""
    pairs = len(np.unique(np.stack([p, q]), axis=1).T)
    return pairs == len(np.unique(p)) == len(np.unique(q))


def between_merges(heights: np.ndarray) -> np.ndarray:
    """Thresholds below, between and above the merge heights. Exactly at a height (or
    between two that differ by rounding only) the last bit of the average decides."""
    h = np.unique(heights)
    gap = np.flatnonzero(np.diff(h) > 1e-9 * h[1:])
    return np.concatenate([[h[0] / 2], (h[gap] + h[gap + 1]) / 2, [h[-1] * 1.5]])


def complete_graph(x: np.ndarray):
    return knn_graph(x, len(x) - 1, "flat")


def pools(count: int):
    """Random small pools: Gaussian blobs of random size, spread and dimension."""
    for seed in range(count):
        rng = np.random.default_rng(seed)
        n, d = int(rng.integers(3, 70)), int(rng.integers(1, 8))
        centres = rng.normal(scale=rng.uniform(1, 6), size=(int(rng.integers(1, 5)), d))
        yield seed, centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize("seed,x", list(pools(25)))
def test_complete_graph_equals_scipy_average_linkage_cut_at_epsilon(seed, x):
    z = linkage(x, method="average")
    graph = complete_graph(x)
    merges = graph_merges(x, graph.ids, graph.dists)
    np.testing.assert_allclose(np.sort(merges.height), z[:, 2], rtol=1e-9, atol=1e-12)
    assert merges.sampled == 0  # every key exact: nothing estimated
    cuts = between_merges(z[:, 2])
    for eps in np.random.default_rng(seed).choice(cuts, size=min(8, len(cuts)), replace=False):
        ours, used = average_linkage(x, graph.ids, graph.dists, epsilon=float(eps))
        assert used == eps
        assert same_partition(ours, fcluster(z, eps, criterion="distance")), (seed, eps)
        assert same_partition(ours, cut(merges, eps))


def test_clusters_merge_at_linkage_equal_to_epsilon_like_fcluster():
    """fcluster's "distance" criterion keeps cophenetic distance ≤ t: a merge at exactly ε
    happens. Integer coordinates make every distance and average exact."""
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 30.0], [0.0, 36.0], [100.0, 0.0]])
    z = linkage(x, method="average")
    graph = complete_graph(x)
    for eps in (5.0, np.nextafter(5.0, 0.0), 6.0, np.nextafter(6.0, 0.0)):
        ours, _ = average_linkage(x, graph.ids, graph.dists, epsilon=eps)
        assert same_partition(ours, fcluster(z, eps, criterion="distance")), eps
    assert len(np.unique(average_linkage(x, graph.ids, graph.dists, epsilon=5.0)[0])) == 4
    assert len(np.unique(average_linkage(x, graph.ids, graph.dists, epsilon=4.999)[0])) == 5


def replay_is_greedy(x: np.ndarray, merges) -> bool:
    """Sequential exact average linkage accepts every merge, in order of height: each
    joins two current clusters at their true mean distance, the smallest of all pairs."""
    d = cdist(x, x)
    members = {i: [i] for i in range(len(x))}
    for t in np.lexsort((np.arange(len(merges.height)), merges.height)):
        u, v, height = int(merges.kept[t]), int(merges.absorbed[t]), merges.height[t]
        ids = list(members)
        smallest = min(d[np.ix_(members[p], members[q])].mean()
                       for i, p in enumerate(ids) for q in ids[i + 1:])
        if not np.isclose(d[np.ix_(members[u], members[v])].mean(), height) or \
                not np.isclose(height, smallest):
            return False
        members[u] += members.pop(v)
    return len(members) == 1


def test_tied_linkages_give_a_valid_dendrogram_where_scipy_depends_on_input_order():
    """Tied linkages have several valid dendrograms (SciPy's changes when the input is
    permuted), so there is no unique answer to agree with; ours must be one of them."""
    line = np.arange(4.0)[:, None]
    assert not np.array_equal(linkage(line, method="average")[:, 2],
                              linkage(line[[1, 2, 0, 3]], method="average")[:, 2])
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 25))
        x = rng.integers(0, 4, size=(n, int(rng.integers(1, 3)))).astype(float)  # many ties
        graph = complete_graph(x)
        merges = graph_merges(x, graph.ids, graph.dists)
        assert replay_is_greedy(x, merges), seed
        for eps in between_merges(merges.height):
            labels, _ = average_linkage(x, graph.ids, graph.dists, epsilon=float(eps))
            np.testing.assert_array_equal(labels, cut(merges, eps))


def exact_cut(z: np.ndarray, mean_size: float) -> tuple[float, np.ndarray]:
    """SciPy's ε for a mean cluster size and its clusters."""
    eps = float(np.sort(z[:, 2])[merges_needed(len(z) + 1, mean_size) - 1])
    return eps, fcluster(z, eps, criterion="distance")


@pytest.fixture(scope="module")
def embedding_pool():
    """2,000 points of overlapping anisotropic heavy-tailed mixtures in 32-d (continuous,
    varying density) and SciPy's exact dendrogram of them."""
    x, _ = embedding_mixture(2000, 32, seed=1)
    return x, linkage(x.astype(np.float64), method="average")


def test_sparse_graph_agrees_with_exact_hac_at_exact_epsilon(embedding_pool):
    """k = 20 + far candidates: ARI ≥ 0.9 against SciPy at SciPy's ε for mean sizes 5, 10,
    20. (The old backend, unknown pairs of linked clusters at the longest edge, scored
    0.24 / 0.11 / 0.08 here.)"""
    x, z = embedding_pool
    graph = neighbour_graph(x, 20)
    merges = graph_merges(x, graph.ids, graph.dists)
    for size in (5, 10, 20):
        eps, exact = exact_cut(z, size)
        assert adjusted_rand_score(exact, cut(merges, eps)) >= 0.9, size


def test_one_far_outlier_leaves_everyone_elses_clusters_alone():
    """The issue's example: 2,000 N(0, 1) points in 10-d, ε = 4; one point at (30, …, 30)
    must not change the others' partition (the old backend, k = 10: ARI 0.185)."""
    x = np.random.default_rng(0).normal(size=(2000, 10))
    with_outlier = np.vstack([x, np.full((1, 10), 30.0)])
    before = neighbour_graph(x, 20)
    after = neighbour_graph(with_outlier, 20)
    plain, _ = average_linkage(x, before.ids, before.dists, epsilon=4.0)
    moved, _ = average_linkage(with_outlier, after.ids, after.dists, epsilon=4.0)
    assert len(np.unique(plain)) > 20  # a partition worth comparing
    assert adjusted_rand_score(plain, moved[:2000]) >= 0.95


def test_one_and_two_point_pools():
    one = np.zeros((1, 3))
    g = knn_graph(one, 5)
    assert average_linkage(one, g.ids, g.dists, epsilon=1.0)[0].tolist() == [0]
    assert average_linkage(one, g.ids, g.dists, target_cluster_size=10)[0].tolist() == [0]
    two = np.array([[0.0], [2.0]])
    g = knn_graph(two, 5)
    assert average_linkage(two, g.ids, g.dists, epsilon=1.999)[0].tolist() == [0, 1]
    assert average_linkage(two, g.ids, g.dists, epsilon=2.0)[0].tolist() == [0, 0]
    assert average_linkage(two, g.ids, g.dists, target_cluster_size=2)[0].tolist() == [0, 0]


def test_epsilon_zero_merges_exact_duplicates_only_and_huge_epsilon_gives_one_cluster():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    x[10:13] = x[0]  # three copies of point 0
    graph = knn_graph(x, 5, "flat")
    labels, _ = average_linkage(x, graph.ids, graph.dists, epsilon=0.0)
    assert len(np.unique(labels)) == 27 and len(np.unique(labels[[0, 10, 11, 12]])) == 1
    ref = fcluster(linkage(x, method="average"), 0.0, criterion="distance")
    assert same_partition(labels, ref)
    bound = diameter_bound(x)
    assert bound >= pdist(x).max()
    labels, used = average_linkage(x, graph.ids, graph.dists, epsilon=bound, diameter=bound)
    assert (labels == 0).all() and used == bound


def test_target_cluster_size_picks_the_smallest_epsilon_that_reaches_it(embedding_pool):
    """The target path stops building the dendrogram early; it must still find the ε and
    the clusters of the whole dendrogram, and ε is this backend's own."""
    x = embedding_pool[0][:600]
    graph = neighbour_graph(x, 15)
    merges = graph_merges(x, graph.ids, graph.dists)
    for target in (1.5, 4, 10, 37.5):
        labels, eps = average_linkage(x, graph.ids, graph.dists, target_cluster_size=target)
        assert eps == threshold_for_mean_size(merges, target)
        np.testing.assert_array_equal(labels, cut(merges, eps))
        early = graph_merges(x, graph.ids, graph.dists,
                             target_merges=merges_needed(len(x), target))
        assert len(early.height) < len(merges.height)
        assert threshold_for_mean_size(early, target) == eps
        assert len(x) / len(np.unique(labels)) >= target
        below = np.max(merges.height[merges.height < eps])
        assert len(x) / len(np.unique(cut(merges, below))) < target
    assert threshold_for_mean_size(merges, 1) == 0.0
    assert average_linkage(x, graph.ids, graph.dists, target_cluster_size=0.5)[1] == 0.0


def test_target_beyond_the_graph_components_is_one_cluster_only_with_a_diameter():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(4), 10)
    x = rng.normal(scale=0.1, size=(40, 2)) + 100.0 * np.arange(4)[groups, None]
    graph = knn_graph(x, 5, "flat")
    merges = graph_merges(x, graph.ids, graph.dists)
    assert threshold_for_mean_size(merges, 10) < np.inf
    assert threshold_for_mean_size(merges, 20) == np.inf  # components have 10 points
    labels, eps = average_linkage(x, graph.ids, graph.dists, target_cluster_size=20)
    assert same_partition(labels, groups) and eps == np.inf
    labels, eps = average_linkage(x, graph.ids, graph.dists, target_cluster_size=20,
                                  diameter=diameter_bound(x))
    assert (labels == 0).all() and eps == diameter_bound(x)


def test_groups_without_an_edge_stay_apart_and_thresholded_runs_cut_like_the_full_one():
    """Far-apart groups share no kNN edge, so they stay apart at every ε below the
    diameter, as in exact HAC up to their true distance; the ε-thresholded run gives the
    same cut as the full dendrogram."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(6), 25)
    x = rng.normal(scale=0.3, size=(150, 5)) + 50.0 * rng.normal(size=(6, 5))[groups]
    graph = knn_graph(x, 8, "flat")
    pairs = graph_edges(graph.ids, graph.dists)
    assert not (groups[pairs["u"]] != groups[pairs["v"]]).any()
    assert len(pairs) == len({(min(i, j), max(i, j)) for i, row in enumerate(graph.ids)
                              for j in row})
    full = graph_merges(x, graph.ids, graph.dists)
    exact = linkage(x, method="average")
    for eps in (5.0, 20.0):  # within the gap: exact HAC has the six groups too
        labels, _ = average_linkage(x, graph.ids, graph.dists, epsilon=eps)
        assert same_partition(labels, groups)
        assert same_partition(labels, fcluster(exact, eps, criterion="distance"))
    for eps in (0.3, 0.6, 1.0, 2.0):
        thresholded = graph_merges(x, graph.ids, graph.dists, eps)
        assert thresholded.height.max(initial=0) <= eps
        assert same_partition(cut(thresholded, eps), cut(full, eps))
