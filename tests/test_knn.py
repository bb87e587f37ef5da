"""kNN graphs (`alharness.ops.knn`): exact search equals brute force, self is excluded even
among duplicates, distances are exact, the approximate searches find most neighbours."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from alharness.ops import knn
from alharness.ops.knn import knn_graph


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    ids = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(d, ids, axis=1)


def low_dim_blobs(n: int, seed: int = 0) -> np.ndarray:
    """Clustered points on a 4-dimensional subspace of R^32, like real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(8, 4))
    z = centres[rng.integers(0, 8, n)] + rng.normal(size=(n, 4))
    return (z @ rng.normal(size=(4, 32))).astype(np.float32)


@pytest.mark.parametrize("search", ["flat", "numpy"])
def test_exact_search_equals_brute_force_with_exact_distances(search, monkeypatch):
    if search == "numpy":
        monkeypatch.setattr(knn, "faiss", None)
    x = np.random.default_rng(0).normal(size=(300, 6))
    graph = knn_graph(x, 7, "flat")
    ids, dists = brute_force(x, 7)
    assert graph.index == search
    np.testing.assert_array_equal(graph.ids, ids)
    np.testing.assert_allclose(graph.dists, dists, rtol=1e-12)


def test_self_is_excluded_among_exact_duplicates_and_duplicates_are_at_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    x[20:30] = x[5]  # 11 copies of one point
    graph = knn_graph(x, 10, "flat")
    copies = [5, *range(20, 30)]
    assert not (graph.ids == np.arange(50)[:, None]).any()
    for i in copies:
        assert sorted(graph.ids[i]) == sorted(set(copies) - {i})
        assert (graph.dists[i] == 0).all()


def test_k_is_capped_at_n_minus_one():
    graph = knn_graph(np.arange(5.0)[:, None], 10, "flat")
    assert graph.ids.shape == (5, 4)
    assert all(sorted(row) == sorted(set(range(5)) - {i}) for i, row in enumerate(graph.ids))


@pytest.mark.parametrize("search,params", [("ivf", {"nlist": 16, "nprobe": 4}),
                                           ("hnsw", {})])
def test_approximate_searches_find_most_neighbours_and_report_true_distances(search, params):
    x = low_dim_blobs(3000)
    graph = knn_graph(x, 10, search, **params)
    exact, _ = brute_force(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(graph.ids, exact, strict=True)])
    assert graph.index == search and recall > 0.9
    found = graph.ids >= 0
    true = np.linalg.norm(x[np.arange(3000)[:, None].repeat(10, 1)[found]]
                          - x[graph.ids[found]], axis=1)
    np.testing.assert_allclose(graph.dists[found], true, rtol=1e-5)
    assert not (graph.ids == np.arange(3000)[:, None]).any()


def test_ivf_is_reproducible_and_auto_switches_by_pool_size(monkeypatch):
    x = low_dim_blobs(2000, seed=3)
    first, again = knn_graph(x, 5, "ivf", nlist=10), knn_graph(x, 5, "ivf", nlist=10)
    np.testing.assert_array_equal(first.ids, again.ids)
    assert knn_graph(x, 5).index == "flat"
    monkeypatch.setattr(knn, "EXACT_MAX", 1000)
    assert knn_graph(x, 5).index == "ivf"
    with pytest.raises(ValueError, match="index must be one of"):
        knn_graph(x, 5, "annoy")


def test_gpu_search_runs_only_when_asked_and_faiss_sees_a_gpu(monkeypatch):
    """No GPU here: the GPU call is stood in for by the CPU search, to check the dispatch."""
    x = low_dim_blobs(500)
    calls = []

    def knn_gpu(res, xq, xb, k, device=-1):
        calls.append(device)
        return knn.faiss.knn(xq, xb, k)

    monkeypatch.setattr(knn.faiss, "knn_gpu", knn_gpu)
    monkeypatch.setattr(knn.faiss, "StandardGpuResources", lambda: None, raising=False)
    monkeypatch.setattr(knn.faiss, "get_num_gpus", lambda: 0)
    assert knn_graph(x, 5, gpu=0).index == "flat" and not calls  # a faiss-cpu build
    monkeypatch.setattr(knn.faiss, "get_num_gpus", lambda: 1)
    assert knn_graph(x, 5).index == "flat" and not calls  # the model is not on CUDA
    assert knn_graph(x, 5, "hnsw", gpu=0).index == "hnsw" and not calls
    graph = knn_graph(x, 5, gpu=1)
    assert graph.index == "flat-gpu" and calls == [1]
    exact = knn_graph(x, 5, "flat")
    np.testing.assert_array_equal(graph.ids, exact.ids)
    np.testing.assert_array_equal(graph.dists, exact.dists)
    monkeypatch.setattr(knn, "EXACT_MAX", 100)  # auto stays exact on a GPU at any size
    assert knn_graph(x, 5, gpu=-1).index == "flat-gpu" and calls == [1, -1]


def reference_distances(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The previous implementation: blocks of 8192 rows × k × d at once, float64 out."""
    out = np.full(ids.shape, np.inf)
    for start in range(0, len(ids), 8192):
        block = ids[start:start + 8192]
        diff = x[np.maximum(block, 0)] - x[start:start + 8192, None, :]
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.float64))
        out[start:start + 8192] = np.where(block >= 0, dist, np.inf)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neighbour_distances_in_small_blocks_equal_the_unblocked_ones(dtype):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 12)).astype(dtype)
    ids = rng.integers(0, 500, (500, 7))
    ids[::9, -2:] = -1
    for block in (1, 100, 12 * 7 * 33, knn.BLOCK_ELEMENTS):  # 1 row … all rows per block
        ours = knn.neighbour_distances(x, ids, block=block)
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, reference_distances(x, ids), rtol=1e-6)


def test_far_candidates_come_from_the_points_cell_neighbourhood_with_true_distances():
    x = low_dim_blobs(4000, seed=5)
    graph = knn_graph(x, 10, "ivf", far=4, nlist=40, seed=3)
    assert graph.ids.shape == (4000, 14) and graph.k == 10
    assert graph.ids.dtype == np.int32 and graph.dists.dtype == np.float32
    np.testing.assert_array_equal(graph.ids, knn_graph(x, 10, "ivf", far=4, nlist=40,
                                                       seed=3).ids)
    cells = knn._Cells.build(x, 40, 4, 3)
    drawn = cells.draw(4, 3)
    np.testing.assert_array_equal(drawn, graph.ids[:, 10:])
    for c in range(len(cells.ptr) - 1):
        members = cells.members[cells.ptr[c]:cells.ptr[c + 1]]
        assert np.isin(drawn[members], cells.candidates(c)).all()
    rows = np.arange(4000)[:, None]
    true = np.linalg.norm(x[graph.ids] - x[rows], axis=2)
    np.testing.assert_allclose(graph.dists, true, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.sort(graph.dists[:, :10], axis=1), graph.dists[:, :10])


def traced_peak(call) -> tuple[object, int]:
    """``call()``'s result and the peak bytes NumPy allocated during it (tracemalloc)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("block", [1 << 14, 1 << 16])
def test_distance_working_memory_is_bounded_by_the_block_not_by_the_graph(block, monkeypatch):
    """Beyond its outputs, the kNN step holds a few block-sized arrays (not rows × k × d:
    10 MB here, 6.5 GB at the issue's 10,000 × 2,048, k = 50)."""
    x = np.random.default_rng(0).normal(size=(4000, 64)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 4000, (4000, 10))
    out, peak = traced_peak(lambda: knn.neighbour_distances(x, ids, block=block))
    assert peak - out.nbytes <= 4 * block * 8
    monkeypatch.setattr(knn, "BLOCK_ELEMENTS", block)
    graph, peak = traced_peak(lambda: knn_graph(x, 10, "flat"))
    searched = 4000 * 11 * 8  # faiss's (n, k + 1) int64 ids
    assert peak - graph.ids.nbytes - graph.dists.nbytes - searched <= 4 * block * 8
