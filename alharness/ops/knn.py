"""k-nearest-neighbour graph of a point set (self excluded), plus random "far" candidates:
the input of graph HAC (`alharness.ops.hac`).

Three searches, all through faiss:

* ``flat`` — exact brute force (``faiss.knn``: BLAS distance blocks + a k-heap).
* ``ivf`` — an inverted file searched cell by cell. A two-level k-means (√nlist top cells,
  each split into cells of about `CELL_SIZE` points) cuts the space into ``nlist`` cells;
  each cell's points are matched, in one ``faiss.knn`` call (a matrix product), against
  the members of the ``nprobe`` cells whose centroids are nearest to the cell's centroid
  (itself included), and the results are written straight into the point's row. Because
  the queries *are* the database this is BLAS work instead of per-query list scans, and
  probing per cell rather than per point lets every point own its output row, so the
  working memory is one cell's block, not n × nprobe × k. With the two-level quantizer
  every step is near-linear in n: assignment costs O(n·√nlist·d), the search
  O(n·nprobe·CELL_SIZE·d).
* ``hnsw`` — ``faiss.IndexHNSWFlat`` (``hnsw_m`` links, ``ef_search``).

``auto`` is exact up to `EXACT_MAX` points and IVF above. Given a ``gpu`` device number
(the caller's model runs on CUDA), a faiss GPU build and a visible GPU, ``auto`` and
``flat`` run the exact search on that GPU instead (``faiss.knn_gpu``, brute force in
tiles: exact at any pool size); ``ivf``/``hnsw`` always run on the CPU. Without faiss, a
blocked exact numpy search is used (O(n²) time, O(block·n) memory).

``far`` adds that many random *far candidates* per point after its k nearest: points drawn
uniformly from the members of the `FAR_CELLS` cells nearest to the point's cell (the IVF
cells; for the other searches a partition made the same way), i.e. from the ~2,000
points around it. They are what lets graph HAC see pairs of sizeable clusters that share
no kNN edge (the module doc of `alharness.ops.hac` has the measurements).

Whatever the search, the returned distances are recomputed from the vectors
(``‖x_i − x_j‖`` from the difference, not faiss's ``‖a‖² + ‖b‖² − 2a·b``), so exact
duplicates get 0 and graph weights agree with SciPy's ``pdist`` up to rounding: an
approximate search can only *miss* a neighbour, never report a wrong distance.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; this is for odd installs
    faiss = None

IndexType = Literal["auto", "flat", "ivf", "hnsw"]
INDEX_TYPES: tuple[str, ...] = get_args(IndexType)

#: ``index="auto"`` searches exactly up to this many points, with IVF above.
EXACT_MAX = 20_000
#: Points per IVF cell (``nlist = n / CELL_SIZE`` unless given).
CELL_SIZE = 512
#: Far candidates are drawn from the members of this many cells nearest to a point's cell.
FAR_CELLS = 4
#: Elements (rows × neighbours × dimensions) of one block of `neighbour_distances`.
BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class KnnGraph:
    """Row i lists point i's ``k`` nearest other points, nearest first (``ids[i, :k]`` at
    Euclidean ``dists[i, :k]``), then its random far candidates (``ids[i, k:]``, any
    order); ``-1`` / ``inf`` where a search found fewer. ids are int32 below 2³¹ points,
    distances in the input's float precision (float32 or float64)."""

    ids: np.ndarray
    dists: np.ndarray
    index: str  # the search actually used
    k: int = 0  # nearest-neighbour columns (the rest are far candidates)


def knn_graph(x: np.ndarray, k: int = 10, index: str = "auto", *, far: int = 0,
              nlist: int | None = None, nprobe: int = 16, hnsw_m: int = 16,
              ef_search: int = 32, seed: int = 0, gpu: int | None = None) -> KnnGraph:
    """The ``k`` nearest other points of every row of ``x`` (n, d), and ``far`` random
    far candidates (module docstring).

    ``index``: ``flat``, ``ivf`` (``nlist`` cells, default n / `CELL_SIZE`, ``nprobe``
    probed per cell), ``hnsw``, or ``auto`` (see the module docstring). ``k`` is capped at
    n − 1. ``seed`` fixes the k-means and the far draws, so the graph is reproducible.
    ``gpu``: a CUDA device number to run ``flat``/``auto`` on when faiss can (module
    docstring), else None (CPU); without GPU support in faiss it is ignored.
    """
    if index not in INDEX_TYPES:
        raise ValueError(f"index must be one of {INDEX_TYPES}, got {index!r}")
    n = x.shape[0]
    k = min(int(k), n - 1)
    id_type = np.int32 if n < 2**31 else np.int64
    dist_type = np.float64 if x.dtype == np.float64 else np.float32
    if k < 1:
        return KnnGraph(np.empty((n, 0), id_type), np.empty((n, 0), dist_type), "flat", 0)
    on_gpu = gpu is not None and index in ("auto", "flat") and _gpu_count() > 0
    if index == "auto":
        index = "flat" if n <= EXACT_MAX or on_gpu else "ivf"
    xs = np.ascontiguousarray(x, dtype=np.float32)
    cells = None
    if faiss is not None and (index == "ivf" or far > 0):
        cells = _Cells.build(xs, nlist or max(1, round(n / CELL_SIZE)), nprobe, seed)
    if faiss is None:
        index = "numpy"
        ids = _numpy_search(xs, k + 1)
    elif index == "ivf":
        ids = cells.search(xs, k + 1)
    elif index == "hnsw":
        ix = faiss.IndexHNSWFlat(xs.shape[1], hnsw_m)
        ix.hnsw.efSearch = max(ef_search, k + 1)
        ix.add(xs)
        ids = ix.search(xs, k + 1)[1]
    elif on_gpu:
        index = "flat-gpu"
        ids = faiss.knn_gpu(faiss.StandardGpuResources(), xs, xs, k + 1, device=gpu)[1]
    else:
        ids = faiss.knn(xs, xs, k + 1)[1]
    extra = None
    if far > 0:
        if cells is None:  # no faiss: far candidates from anywhere
            extra = np.random.default_rng(seed).integers(0, n, (n, far))
        else:
            extra = cells.draw(far, seed)
    out_ids = np.empty((n, k + far), id_type)
    out_dists = np.empty((n, k + far), dist_type)
    step = max(1, BLOCK_ELEMENTS // ((k + far) * x.shape[1]))
    for start in range(0, n, step):  # row blocks: bounded working memory
        rows = slice(start, start + step)
        near = _drop_self(ids[rows], k, start)
        dist = _row_distances(x, start, near)
        order = np.argsort(dist, axis=1, kind="stable")
        out_ids[rows, :k] = np.take_along_axis(near, order, 1)
        out_dists[rows, :k] = np.take_along_axis(dist, order, 1)
        if extra is not None:
            out_ids[rows, k:] = extra[rows]
            out_dists[rows, k:] = _row_distances(x, start, extra[rows])
    return KnnGraph(out_ids, out_dists, index, k)


def neighbour_distances(x: np.ndarray, ids: np.ndarray,
                        block: int = BLOCK_ELEMENTS) -> np.ndarray:
    """``‖x[i] − x[ids[i, j]]‖`` (inf where ``ids`` is −1), in row blocks of at most
    ``block`` rows × columns × dimensions elements, so the working memory is bounded by
    ``block``, not by the graph. From the difference, so duplicates are exactly 0;
    float64 input stays float64, anything else is float32."""
    out = np.empty(ids.shape, np.float64 if x.dtype == np.float64 else np.float32)
    rows = max(1, block // max(1, ids.shape[1] * x.shape[1]))
    for start in range(0, len(ids), rows):
        out[start:start + rows] = _row_distances(x, start, ids[start:start + rows])
    return out


def _row_distances(x: np.ndarray, start: int, ids: np.ndarray) -> np.ndarray:
    """Distances of rows ``start … start + len(ids)`` of ``x`` to their ``ids``."""
    diff = x[np.maximum(ids, 0)] - x[start:start + len(ids), None, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.float64))
    return np.where(ids >= 0, dist, np.inf)


def diameter_bound(x: np.ndarray, rows: int = 65536) -> float:
    """An upper bound of every pairwise distance: 2 · the largest distance to the mean.

    O(n·d): what average-linkage HAC needs to know when ε puts the whole pool in one
    cluster (`alharness.ops.hac.average_linkage`), without any pairwise distance.
    """
    if not len(x):
        return 0.0
    centre = x.mean(axis=0, dtype=np.float64)
    radius = max(float(np.linalg.norm(x[s:s + rows] - centre, axis=1).max())
                 for s in range(0, len(x), rows))
    return 2.0 * radius


class _Cells:
    """A two-level k-means partition of the points, each cell with the ``nprobe`` cells
    nearest to its centroid (itself first)."""

    def __init__(self, members: np.ndarray, ptr: np.ndarray, probes: np.ndarray) -> None:
        self.members, self.ptr, self.probes = members, ptr, probes  # cell c: members[ptr[c]:ptr[c+1]]

    @classmethod
    def build(cls, x: np.ndarray, nlist: int, nprobe: int, seed: int) -> _Cells:
        n, d = x.shape
        nlist = max(1, min(nlist, n))
        top = max(1, min(n, round(math.sqrt(nlist))))
        top_of = _kmeans_assign(x, top, seed)
        cell = np.empty(n, np.int64)
        centroids = []
        by_top = np.argsort(top_of, kind="stable")
        bounds = np.searchsorted(top_of[by_top], np.arange(top + 1))
        for t in range(top):
            rows = by_top[bounds[t]:bounds[t + 1]]
            if not len(rows):
                continue
            sub = max(1, round(len(rows) * nlist / n))
            local, cent = _kmeans_assign(x[rows], sub, seed + 1 + t, centroids=True)
            cell[rows] = len(centroids) + local
            centroids.extend(cent)
        centroids = np.asarray(centroids, dtype=np.float32)
        members = np.argsort(cell, kind="stable").astype(np.int64)
        ptr = np.searchsorted(cell[members], np.arange(len(centroids) + 1))
        probes = faiss.knn(centroids, centroids, min(nprobe, len(centroids)))[1]
        return cls(members, ptr, probes)

    def candidates(self, c: int, cells: int | None = None) -> np.ndarray:
        """Members of cell c's ``cells`` nearest cells (default: all its probes)."""
        return np.concatenate([self.members[self.ptr[j]:self.ptr[j + 1]]
                               for j in self.probes[c, :cells] if j >= 0])

    def search(self, x: np.ndarray, k: int) -> np.ndarray:
        """(n, k) ids of each point's k nearest among its cell's candidates (−1 = none).

        Cells are searched by a pool of Python threads, each running single-threaded
        faiss (faiss releases the GIL): many small multi-threaded calls would spend more
        time spinning than computing. Each point's row is written by its own cell only."""
        out = np.full((len(x), k), -1, dtype=np.int32 if len(x) < 2**31 else np.int64)

        def search(c: int) -> None:
            queries = self.members[self.ptr[c]:self.ptr[c + 1]]
            if not len(queries):
                return
            pool = self.candidates(c)
            kk = min(k, len(pool))
            local = faiss.knn(x[queries], x[pool], kk)[1]
            out[queries, :kk] = np.where(local >= 0, pool[np.maximum(local, 0)], -1)

        workers = max(1, faiss.omp_get_max_threads())
        with ThreadPoolExecutor(workers, initializer=faiss.omp_set_num_threads,
                                initargs=(1,)) as pool:
            list(pool.map(search, range(len(self.ptr) - 1)))
        return out

    def draw(self, count: int, seed: int) -> np.ndarray:
        """(n, count) points drawn uniformly from the members of the `FAR_CELLS` cells
        nearest to each point's cell."""
        rng = np.random.default_rng(seed)
        n = len(self.members)
        out = np.empty((n, count), np.int32 if n < 2**31 else np.int64)
        for c in range(len(self.ptr) - 1):
            queries = self.members[self.ptr[c]:self.ptr[c + 1]]
            if len(queries):
                pool = self.candidates(c, FAR_CELLS)
                out[queries] = pool[rng.integers(0, len(pool), (len(queries), count))]
        return out


def _kmeans_assign(x: np.ndarray, clusters: int, seed: int, centroids: bool = False):
    """faiss k-means (10 iterations on at most 64 points per centroid) and each row's
    nearest centroid; with ``centroids``, also the centroids."""
    clusters = max(1, min(clusters, len(x)))
    if clusters == 1:
        assign = np.zeros(len(x), np.int64)
        return (assign, x.mean(axis=0, keepdims=True)) if centroids else assign
    km = faiss.Kmeans(x.shape[1], clusters, niter=10, seed=seed, max_points_per_centroid=64)
    km.train(x)
    assign = km.index.search(x, 1)[1].ravel()
    return (assign, km.centroids) if centroids else assign


def _gpu_count() -> int:
    """GPUs faiss can use: 0 for faiss-cpu builds (no ``get_num_gpus``, or it says 0)."""
    return getattr(faiss, "get_num_gpus", lambda: 0)() if faiss is not None else 0


def _drop_self(ids: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """From k + 1 results per row (rows ``start …``) keep k that are not the row itself.

    The query point is usually first, but with exact duplicates it may come anywhere or
    not at all; rows without it lose their last (farthest) result instead.
    """
    is_self = ids == np.arange(start, start + ids.shape[0])[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, keep, axis=1)


def _numpy_search(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((x.shape[0], k), np.int64)
    for start in range(0, x.shape[0], block):
        d2 = sq[start:start + block, None] + sq[None, :] - 2.0 * (x[start:start + block] @ x.T)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1)
        out[start:start + block] = np.take_along_axis(part, order, axis=1)
    return out
