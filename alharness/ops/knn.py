"""k-nearest-neighbour graph of a point set (self excluded), the input of graph HAC.

Three searches, all through faiss:

* ``flat`` — exact brute force (``faiss.knn``: BLAS distance blocks + a k-heap).
* ``ivf`` — an inverted file: faiss k-means cuts the space into ``nlist`` cells, every
  point probes its ``nprobe`` nearest cells. Because the queries *are* the database, the
  search runs list-major: for each cell, all points that probe it are matched against
  its members in one ``faiss.knn`` call (a matrix product), and the per-cell results are
  merged into a top-k. That is the candidate set of faiss's ``IndexIVFFlat`` search,
  but as BLAS calls instead of per-query scans: at 10^5 points, d = 128, about 3× less
  CPU than ``IndexIVFFlat`` with the same cells and probes.
* ``hnsw`` — ``faiss.IndexHNSWFlat`` (``hnsw_m`` links, ``ef_search``).

``auto`` is exact up to `EXACT_MAX` points and IVF above. Given a ``gpu`` device number
(the caller's model runs on CUDA), a faiss GPU build and a visible GPU, ``auto`` and
``flat`` run the exact search on that GPU instead (``faiss.knn_gpu``, brute force in
tiles: exact at any pool size); ``ivf``/``hnsw`` always run on the CPU. Whatever the
search, the returned distances are recomputed from the vectors (``‖x_i − x_j‖`` from the
difference, not faiss's ``‖a‖² + ‖b‖² − 2a·b``), so exact duplicates get 0 and graph
weights agree with SciPy's ``pdist`` up to rounding: an approximate search can only
*miss* a neighbour, never report a wrong distance. Without faiss, a blocked exact numpy
search is used (O(n²) time, O(block·n) memory).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; this is for odd installs
    faiss = None

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")

#: ``index="auto"`` searches exactly up to this many points, with IVF above.
EXACT_MAX = 20_000


@dataclass(frozen=True)
class KnnGraph:
    """Row i lists point i's neighbours: ``ids[i, j]`` at Euclidean ``dists[i, j]``,
    nearest first; ``-1`` / ``inf`` where an approximate search found fewer than k."""

    ids: np.ndarray  # (n, k) int64
    dists: np.ndarray  # (n, k) float64
    index: str  # the search actually used


def knn_graph(x: np.ndarray, k: int = 10, index: str = "auto", *, nlist: int | None = None,
              nprobe: int = 4, hnsw_m: int = 16, ef_search: int = 32,
              seed: int = 0, gpu: int | None = None) -> KnnGraph:
    """The ``k`` nearest other points of every row of ``x`` (n, d).

    ``index``: ``flat``, ``ivf`` (``nlist`` cells, default ≈ √n, ``nprobe`` probed per
    point), ``hnsw``, or ``auto`` (see the module docstring). ``k`` is capped at n − 1.
    ``seed`` fixes the IVF k-means, so the graph is reproducible. ``gpu``: a CUDA device
    number to run ``flat``/``auto`` on when faiss can (see the module docstring), else
    None (CPU); without GPU support in faiss it is ignored.
    """
    if index not in INDEX_TYPES:
        raise ValueError(f"index must be one of {INDEX_TYPES}, got {index!r}")
    n = x.shape[0]
    k = min(int(k), n - 1)
    if k < 1:
        return KnnGraph(np.empty((n, 0), np.int64), np.empty((n, 0)), "flat")
    on_gpu = gpu is not None and index in ("auto", "flat") and _gpu_count() > 0
    if index == "auto":
        index = "flat" if n <= EXACT_MAX or on_gpu else "ivf"
    xs = np.ascontiguousarray(x, dtype=np.float32)
    if faiss is None:
        index = "numpy"
        ids = _numpy_search(xs, k + 1)
    elif index == "ivf":
        ids = _ivf_search(xs, k + 1, nlist or max(1, round(math.sqrt(n))), nprobe, seed)
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
    ids = _drop_self(ids.astype(np.int64, copy=False), k)
    dists = neighbour_distances(x, ids)
    order = np.argsort(dists, axis=1, kind="stable")
    return KnnGraph(np.take_along_axis(ids, order, 1), np.take_along_axis(dists, order, 1), index)


def neighbour_distances(x: np.ndarray, ids: np.ndarray, rows: int = 8192) -> np.ndarray:
    """``‖x[i] − x[ids[i, j]]‖`` (inf where ``ids`` is −1), in blocks of ``rows`` points.

    From the difference, so duplicates are exactly 0; float64 input stays float64.
    """
    out = np.full(ids.shape, np.inf)
    for start in range(0, len(ids), rows):
        block = ids[start:start + rows]
        diff = x[np.maximum(block, 0)] - x[start:start + rows, None, :]
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.float64))
        out[start:start + rows] = np.where(block >= 0, dist, np.inf)
    return out


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


def _gpu_count() -> int:
    """GPUs faiss can use: 0 for faiss-cpu builds (no ``get_num_gpus``, or it says 0)."""
    return getattr(faiss, "get_num_gpus", lambda: 0)() if faiss is not None else 0


def _drop_self(ids: np.ndarray, k: int) -> np.ndarray:
    """From k + 1 results per row keep k that are not the row itself.

    The query point is usually first, but with exact duplicates it may come anywhere or
    not at all; rows without it lose their last (farthest) result instead.
    """
    is_self = ids == np.arange(ids.shape[0])[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, keep, axis=1)


def _ivf_search(x: np.ndarray, k: int, nlist: int, nprobe: int, seed: int) -> np.ndarray:
    """List-major IVF self-join (see the module docstring); returns (n, k) ids, −1 = none.

    Cells are searched by a pool of Python threads, each running single-threaded faiss
    (faiss releases the GIL): many small multi-threaded calls would spend more time
    spinning than computing. Every (point, probed cell) pair owns one result row, so the
    threads never write the same memory; rows are merged into a top-k at the end.
    """
    n, d = x.shape
    nlist, nprobe = min(nlist, n), min(nprobe, nlist, n)
    kmeans = faiss.Kmeans(d, nlist, niter=10, seed=seed, max_points_per_centroid=64)
    kmeans.train(x)
    probes = faiss.knn(x, kmeans.centroids, nprobe)[1].ravel()  # point p's cells: p·nprobe + s
    members = np.argsort(probes[::nprobe], kind="stable")  # by nearest cell
    member_ptr = np.searchsorted(probes[::nprobe][members], np.arange(nlist + 1))
    slots = np.argsort(probes, kind="stable")  # (point, probe) slots by cell
    slot_ptr = np.searchsorted(probes[slots], np.arange(nlist + 1))
    found_d = np.full((n * nprobe, k), np.inf, dtype=np.float32)
    found_i = np.full((n * nprobe, k), -1, dtype=np.int64)

    def search(cell: int) -> None:
        m = members[member_ptr[cell]:member_ptr[cell + 1]]
        s = slots[slot_ptr[cell]:slot_ptr[cell + 1]]
        if len(m) and len(s):
            kk = min(k, len(m))
            dist, local = faiss.knn(x[s // nprobe], x[m], kk)
            found_d[s, :kk] = dist
            found_i[s, :kk] = np.where(local >= 0, m[local], -1)

    workers = max(1, faiss.omp_get_max_threads())
    with ThreadPoolExecutor(workers, initializer=faiss.omp_set_num_threads,
                            initargs=(1,)) as pool:
        list(pool.map(search, range(nlist)))
    found_d = found_d.reshape(n, nprobe * k)
    top = np.argpartition(found_d, k - 1, axis=1)[:, :k] if nprobe > 1 else np.arange(k)[None]
    return np.take_along_axis(found_i.reshape(n, nprobe * k), top, axis=1)


def _numpy_search(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((x.shape[0], k), np.int64)
    for start in range(0, x.shape[0], block):
        d2 = sq[start:start + block, None] + sq[None, :] - 2.0 * (x[start:start + block] @ x.T)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1)
        out[start:start + block] = np.take_along_axis(part, order, axis=1)
    return out
