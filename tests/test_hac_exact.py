"""Exact average-linkage HAC by nearest-neighbour chains (`alharness.ops.hac_exact`):
SciPy's dendrogram and cuts on pools of several kinds, whatever the row cache and the
number of chains, the ε semantics of the graph backend, ties, duplicates, tiny pools."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import cdist

from alharness.ops.dendrogram import cut
from alharness.ops.hac_exact import exact_average_linkage, exact_merges
from tests.test_hac import between_merges, same_partition


def gaussian_pool(seed: int, n: int, d: int) -> np.ndarray:
    """Gaussian blobs of random spread: clusters at several scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=rng.uniform(1, 6), size=(int(rng.integers(1, 6)), d))
    return centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, d))


def varying_density_pool(seed: int, n: int, d: int) -> np.ndarray:
    """One cloud whose density falls continuously over three orders of magnitude of
    radius, slightly anisotropic: no separated blobs to make the merge order easy."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, d)) * np.linspace(1.0, 0.3, d)
    return directions * np.exp(rng.uniform(-3.0, 3.0, size=(n, 1)))


# (pool, seed, n, d, options): the cache/chain options force rows to be evicted and
# recomputed (cache_mb=0 keeps only the minimum), chains to collide and give way
# (many chains on few points) or a single classic chain; block_rows splits clusters
# over several matrix products.
CASES = [
    (gaussian_pool, 0, 20, 2, {}),
    (gaussian_pool, 1, 57, 1, {"chains": 1}),
    (gaussian_pool, 2, 120, 7, {"cache_mb": 0, "chains": 3}),
    (gaussian_pool, 3, 300, 16, {"cache_mb": 0, "chains": 4}),
    (gaussian_pool, 4, 600, 50, {"block_rows": 37}),
    (varying_density_pool, 5, 150, 3, {"cache_mb": 0, "chains": 1}),
    (varying_density_pool, 6, 500, 10, {}),
    (varying_density_pool, 7, 400, 32, {"cache_mb": 0, "chains": 8}),
    # many dimensions: rows mostly read from cached rows, distances only to the rest
    (varying_density_pool, 8, 300, 400, {"cache_mb": 0, "chains": 16}),
    (gaussian_pool, 9, 400, 256, {"chains": 8}),
]


@pytest.mark.parametrize("pool,seed,n,d,options", CASES)
def test_dendrogram_and_cuts_equal_scipy_average_linkage(pool, seed, n, d, options):
    x = pool(seed, n, d)
    z = linkage(x, method="average")
    merges = exact_merges(x, **options)
    assert len(merges.height) == n - 1
    np.testing.assert_allclose(np.sort(merges.height), z[:, 2], rtol=1e-10, atol=1e-12)
    if options.get("cache_mb") == 0:
        assert merges.point_rows > n  # evicted rows were recomputed from their points
    cuts = between_merges(z[:, 2])
    for eps in np.random.default_rng(seed).choice(cuts, size=min(12, len(cuts)), replace=False):
        assert same_partition(cut(merges, eps), fcluster(z, eps, criterion="distance")), eps
    eps = float(np.median(cuts))  # the ε path stops early; same clusters
    labels, used = exact_average_linkage(x, epsilon=eps, **options)
    assert used == eps and same_partition(labels, fcluster(z, eps, criterion="distance"))


@pytest.mark.parametrize("target", [1.5, 4, 10, 37.5])
def test_target_cluster_size_gives_scipys_epsilon_and_clusters(target):
    x = varying_density_pool(11, 300, 5)
    z = linkage(x, method="average")
    need = len(x) - int(np.floor(len(x) / target))
    scipy_eps = np.sort(z[:, 2])[need - 1]
    labels, eps = exact_average_linkage(x, target_cluster_size=target)
    assert eps == pytest.approx(scipy_eps, rel=1e-12)
    assert same_partition(labels, fcluster(z, scipy_eps, criterion="distance"))
    assert len(x) / len(np.unique(labels)) >= target


def test_merge_at_linkage_equal_to_epsilon_happens_like_fcluster():
    """fcluster keeps cophenetic distance ≤ t. Integer coordinates make every distance
    and average exact, so a merge sits exactly at 5 and at 6 (and one at 1.5·(30+36))."""
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 30.0], [0.0, 36.0], [100.0, 0.0]])
    z = linkage(x, method="average")
    for eps in (5.0, np.nextafter(5.0, 0.0), 6.0, np.nextafter(6.0, 0.0)):
        labels, _ = exact_average_linkage(x, epsilon=eps)
        assert same_partition(labels, fcluster(z, eps, criterion="distance")), eps
    assert len(np.unique(exact_average_linkage(x, epsilon=5.0)[0])) == 4
    assert len(np.unique(exact_average_linkage(x, epsilon=np.nextafter(5.0, 0.0))[0])) == 5
    assert sorted(exact_merges(x).height)[:2] == [5.0, 6.0]


def test_duplicates_merge_at_height_zero_like_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)) * 100.0 + 1e4  # far from the origin: ‖a‖²+‖b‖²−2ab cancels
    x[10:14] = x[0]  # four copies of point 0
    x[20] = x[21]
    x[30] = x[31] + 1e-9  # a near-duplicate, not an exact one
    z = linkage(x, method="average")
    merges = exact_merges(x)
    assert np.count_nonzero(merges.height == 0.0) == np.count_nonzero(z[:, 2] == 0.0) == 5
    np.testing.assert_allclose(np.sort(merges.height), z[:, 2], rtol=1e-10, atol=1e-12)
    labels, _ = exact_average_linkage(x, epsilon=0.0)
    assert same_partition(labels, fcluster(z, 0.0, criterion="distance"))
    assert len(np.unique(labels)) == 55 and len(np.unique(labels[[0, 10, 11, 12, 13]])) == 1
    labels, _ = exact_average_linkage(x, target_cluster_size=1)  # ε = 0 still joins copies
    assert len(np.unique(labels)) == 55


def greedy_until(x: np.ndarray, merges, eps: float = np.inf) -> bool:
    """Sequential exact average linkage accepts every merge of height ≤ ``eps``, in
    height order (each joins two current clusters at their true mean distance, the
    smallest of all pairs), and then no pair is left within ``eps``."""
    d = cdist(x, x)
    members = {i: [i] for i in range(len(x))}

    def smallest() -> float:
        ids = list(members)
        return min((d[np.ix_(members[p], members[q])].mean()
                    for i, p in enumerate(ids) for q in ids[i + 1:]), default=np.inf)

    for t in np.lexsort((np.arange(len(merges.height)), merges.height)):
        u, v, height = int(merges.kept[t]), int(merges.absorbed[t]), merges.height[t]
        if height > eps:
            continue
        if not np.isclose(d[np.ix_(members[u], members[v])].mean(), height) or \
                not np.isclose(height, smallest()):
            return False
        members[u] += members.pop(v)
    return len(members) == 1 or smallest() > eps


def test_tied_linkages_give_a_valid_greedy_dendrogram():
    """Many equal linkages: several dendrograms are valid (SciPy's depends on the input
    order) and they cut differently, so ours — whole, or stopped at ε — must be one of
    them, whatever the chains and cache."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 21))
        x = rng.integers(0, 4, size=(n, int(rng.integers(1, 3)))).astype(float)
        for options in ({}, {"chains": 1, "cache_mb": 0}, {"chains": 2}):
            merges = exact_merges(x, **options)
            assert greedy_until(x, merges) and len(merges.height) == n - 1, (seed, options)
            eps = float(np.median(between_merges(merges.height)))
            stopped = exact_merges(x, eps, **options)
            assert greedy_until(x, stopped, eps), (seed, options, eps)
            labels, _ = exact_average_linkage(x, epsilon=eps, **options)
            assert same_partition(labels, cut(stopped, eps))


def test_degenerate_pools():
    assert exact_average_linkage(np.zeros((1, 3)), epsilon=1.0)[0].tolist() == [0]
    assert exact_average_linkage(np.zeros((1, 3)), target_cluster_size=10)[0].tolist() == [0]
    assert len(exact_merges(np.zeros((0, 2))).height) == 0
    two = np.array([[0.0], [2.0]])
    assert exact_merges(two).height.tolist() == [2.0]
    assert exact_average_linkage(two, epsilon=1.999)[0].tolist() == [0, 1]
    assert exact_average_linkage(two, epsilon=2.0)[0].tolist() == [0, 0]
    assert exact_average_linkage(two, target_cluster_size=2)[0].tolist() == [0, 0]
    same = np.ones((7, 4))
    merges = exact_merges(same)
    assert merges.height.tolist() == [0.0] * 6
    assert (exact_average_linkage(same, epsilon=0.0)[0] == 0).all()
    x = np.random.default_rng(0).normal(size=(40, 3))
    labels, eps = exact_average_linkage(x, target_cluster_size=40)
    assert (labels == 0).all() and eps == pytest.approx(linkage(x, "average")[-1, 2])


def test_bad_input_and_arguments_are_refused():
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="exactly one"):
        exact_average_linkage(x)
    with pytest.raises(ValueError, match="exactly one"):
        exact_average_linkage(x, epsilon=1.0, target_cluster_size=3)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        exact_merges(x)
    with pytest.raises(ValueError, match="2-d"):
        exact_merges(np.zeros(5))
    with pytest.raises(ValueError, match="chains"):
        exact_merges(np.zeros((5, 2)), chains=0)


def test_progress_reports_settled_merges_up_to_n_minus_one():
    x = varying_density_pool(3, 200, 4)
    seen = []
    exact_merges(x, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (199, 199)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    seen.clear()
    exact_average_linkage(x, epsilon=0.5, progress=lambda done, total: seen.append(done))
    assert seen[-1] == 199  # merges plus clusters settled above ε
