"""Lloyd's k-means (faiss when installed, numpy otherwise) and the member nearest each centre.

Diversity step of ALFA-Mix (Parvaneh et al., CVPR 2022, Sec. 3.3): cluster the candidates
and label, per cluster, the point closest to its centre. Kept generic for other strategies.

Choices, the same for both backends so they differ only in floating-point detail:

- **Initialisation**: ``k`` distinct training points drawn uniformly at random (faiss's
  default), not sklearn's k-means++ — faiss's k-means++ is O(n·k·d) *sequential* work
  (≈ 30 s for 20,000 × 512 → 2,000 on 2 cores), which does not fit the pool-scale budget;
  the Lloyd steps that follow matter more than the seeding.
- **Training sample**: at most ``max_points_per_centroid · k`` points, drawn uniformly
  (faiss's rule, default 256); every point is still assigned to the final centres.
- **Cost**: O(iters · n_train · k · d) time, O(n·d + k·d) memory plus O(chunk · k) for
  the numpy assignment.
"""

from __future__ import annotations

import numpy as np

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; numpy is the fallback
    faiss = None

#: Rows per block in the numpy assignment, so distances take O(block · k) memory.
_BLOCK_ELEMENTS = 1 << 24


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 20,
           max_points_per_centroid: int | None = 256, backend: str = "auto") -> np.ndarray:
    """(k, d) float32 centres of Lloyd's k-means on the rows of ``x`` (needs k ≤ n).

    Every random choice (training sample, initial centres, faiss's seed) comes from ``rng``,
    so the same generator state gives the same centres. ``backend`` is ``auto`` (faiss if
    installed), ``faiss`` or ``numpy``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 ≤ k ≤ n points, got k={k}, n={n}")
    train = x
    if max_points_per_centroid is not None and n > k * max_points_per_centroid:
        train = x[np.sort(rng.choice(n, size=k * max_points_per_centroid, replace=False))]
    if _use_faiss(backend):
        km = faiss.Kmeans(d, k, niter=iters, seed=int(rng.integers(2**31 - 1)),
                          min_points_per_centroid=1, max_points_per_centroid=len(train),
                          verbose=False)
        km.train(train)
        return np.asarray(km.centroids, dtype=np.float32)
    return _lloyd_numpy(train, k, rng, iters)


def assign(x: np.ndarray, centres: np.ndarray, backend: str = "auto"
           ) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centre id (n,) int64, its squared L2 distance (n,) float32) per row of ``x``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    centres = np.ascontiguousarray(centres, dtype=np.float32)
    if _use_faiss(backend):
        index = faiss.IndexFlatL2(centres.shape[1])
        index.add(centres)
        dist, ids = index.search(x, 1)
        return ids[:, 0].astype(np.int64), np.maximum(dist[:, 0], 0.0)
    labels = np.empty(len(x), dtype=np.int64)
    dist = np.empty(len(x), dtype=np.float32)
    c_sq = (centres**2).sum(axis=1)
    block = max(1, _BLOCK_ELEMENTS // max(len(centres), 1))
    for start in range(0, len(x), block):
        rows = x[start:start + block]
        d2 = c_sq[None, :] - 2.0 * rows @ centres.T  # |x|² is constant per row
        labels[start:start + block] = d2.argmin(axis=1)
        best = d2[np.arange(len(rows)), labels[start:start + block]]
        dist[start:start + block] = np.maximum(best + (rows**2).sum(axis=1), 0.0)
    return labels, dist


def nearest_to_centres(x: np.ndarray, centres: np.ndarray, backend: str = "auto") -> np.ndarray:
    """Row index of ``x`` nearest to each centre among the rows assigned to it.

    One index per non-empty cluster, in centre order; a centre no row is assigned to
    contributes nothing, so the result may be shorter than ``len(centres)`` (callers fill
    the shortfall). Ties go to the lower row index.
    """
    labels, dist = assign(x, centres, backend)
    order = np.lexsort((np.arange(len(x)), dist, labels))  # by cluster, then distance
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order[1:]] != labels[order[:-1]]
    return order[first].astype(np.int64)


def _use_faiss(backend: str) -> bool:
    if backend not in ("auto", "faiss", "numpy"):
        raise ValueError(f"backend must be auto, faiss or numpy, got {backend!r}")
    if backend == "faiss" and faiss is None:
        raise ImportError("backend='faiss' but faiss is not installed; pip install faiss-cpu")
    return faiss is not None and backend != "numpy"


def _lloyd_numpy(x: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    """Plain Lloyd iterations; an empty cluster keeps its previous centre."""
    centres = x[rng.choice(len(x), size=k, replace=False)].copy()
    labels = None
    for _ in range(iters):
        new_labels, _ = assign(x, centres, "numpy")
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        order = np.argsort(labels, kind="stable")
        starts = np.searchsorted(labels[order], np.arange(k))
        full = counts > 0
        sums = np.add.reduceat(x[order], starts[full], axis=0)
        centres[full] = sums / counts[full, None]
    return centres
