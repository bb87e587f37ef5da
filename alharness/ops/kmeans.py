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

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from alharness.ops.kmeans_pp import greedy_seeding

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; numpy is the fallback
    faiss = None

#: Initialisations of `kmeans`.
INITS = ("kmeanspp", "random")

#: Rows per block in the numpy assignment, so distances take O(block · k) memory.
_BLOCK_ELEMENTS = 1 << 24


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 20,
           max_points_per_centroid: int | None = 256, backend: str = "auto",
           init: str = "kmeanspp", max_trials: int | None = None) -> np.ndarray:
    """(k, d) float32 centres of k-means on the rows of ``x`` (needs k ≤ n).

    ``init`` is one of `INITS`: ``kmeanspp`` (scikit-learn's greedy k-means++ with at
    most ``max_trials`` candidates per centre, `greedy_seeding`) or ``random`` (k distinct
    training points drawn uniformly). Then at most ``iters`` Lloyd iterations, stopping
    once no point changes cluster. Every random choice (training sample, seeds) comes from
    ``rng``, so the same generator state gives the same centres. ``backend`` is ``auto``
    (faiss if installed), ``faiss`` or ``numpy`` for the assignment steps.
    """
    return _fit(x, k, rng, iters, max_points_per_centroid, backend, init, max_trials).centres


def kmeans_nearest(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 20,
                   max_points_per_centroid: int | None = 256, backend: str = "auto",
                   init: str = "kmeanspp", max_trials: int | None = None) -> np.ndarray:
    """`nearest_to_centres` of `kmeans` (same arguments): the diversity step.

    Without a training sample, Lloyd's last assignment is the assignment of every row to
    the final centres, so it is reused instead of a new pass.
    """
    fit = _fit(x, k, rng, iters, max_points_per_centroid, backend, init, max_trials)
    if fit.labels is None:
        return nearest_to_centres(x, fit.centres, backend)
    return _nearest_members(fit.labels, fit.dist)


@dataclass(frozen=True)
class _Fit:
    centres: np.ndarray
    labels: np.ndarray | None  # the final assignment of every row of x, when known
    dist: np.ndarray | None


def _fit(x: np.ndarray, k: int, rng: np.random.Generator, iters: int,
         max_points_per_centroid: int | None, backend: str, init: str,
         max_trials: int | None) -> _Fit:
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    _use_faiss(backend)  # validate before any work
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 ≤ k ≤ n points, got k={k}, n={n}")
    train = x
    if max_points_per_centroid is not None and n > k * max_points_per_centroid:
        train = x[np.sort(rng.choice(n, size=k * max_points_per_centroid, replace=False))]
    if init == "kmeanspp":
        seeding = greedy_seeding(train, k, rng, max_trials)
        centres, labels, dist = train[seeding.picks], seeding.labels, seeding.d2
    else:
        centres = train[rng.choice(len(train), size=k, replace=False)]
        labels, dist = assign(train, centres, backend)
    centres = _lloyd(train, centres, labels, dist, iters, backend)
    return _Fit(centres, labels, dist) if train is x else _Fit(centres, None, None)


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
    return _nearest_members(*assign(x, centres, backend))


def _nearest_members(labels: np.ndarray, dist: np.ndarray) -> np.ndarray:
    order = np.lexsort((np.arange(len(labels)), dist, labels))  # by cluster, then distance
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order[1:]] != labels[order[:-1]]
    return order[first].astype(np.int64)


def _use_faiss(backend: str) -> bool:
    if backend not in ("auto", "faiss", "numpy"):
        raise ValueError(f"backend must be auto, faiss or numpy, got {backend!r}")
    if backend == "faiss" and faiss is None:
        raise ImportError("backend='faiss' but faiss is not installed; pip install faiss-cpu")
    return faiss is not None and backend != "numpy"


def _lloyd(x: np.ndarray, centres: np.ndarray, labels: np.ndarray, dist: np.ndarray,
           iters: int, backend: str) -> np.ndarray:
    """At most ``iters`` Lloyd iterations (means, then assignment) from ``centres``, whose
    assignment (``labels``, ``dist``) is given; stops once no point changes cluster.

    Returns the centres of the last assignment step, and ``labels``/``dist`` are updated in
    place to that assignment, so they always agree (scikit-learn's Lloyd ends the same
    way: a last assignment to the returned centres). An empty cluster gets the point
    farthest from its centre, as scikit-learn relocates empty clusters.

    The assignment is exact but incremental (`_reassign`): a centre whose members did not
    change does not move, so after the first iterations only a few centres need distances
    (on bench_selection's ALFA-Mix candidates the label changes per iteration ran
    ≈ 600, 10, 4, 0 of 22,310).
    """
    k = len(centres)
    centres = centres.copy()
    for _ in range(iters):
        counts = np.bincount(labels, minlength=k)
        members = sparse.csr_matrix((np.ones(len(x), np.float32), (labels, np.arange(len(x)))),
                                    shape=(k, len(x)))
        previous = centres.copy()
        full = counts > 0
        centres[full] = (members @ x)[full] / counts[full, None]
        empty = np.flatnonzero(~full)
        if len(empty):
            centres[empty] = x[np.argsort(-dist, kind="stable")[: len(empty)]]
        moved = (centres != previous).any(axis=1)
        if not _reassign(x, centres, moved, labels, dist, backend):
            break
    return centres


def _reassign(x: np.ndarray, centres: np.ndarray, moved: np.ndarray, labels: np.ndarray,
              dist: np.ndarray, backend: str) -> bool:
    """Update the assignment (``labels``, ``dist``, in place) after the centres ``moved``
    changed; return whether any label changed.

    A point whose own centre did not move keeps its distance, so only the moved centres
    can take it; a point whose centre moved is searched against every centre. Exact up
    to ties, which may resolve differently from a full pass."""
    own_moved = moved[labels]
    changed = False
    if own_moved.any():
        rows = np.flatnonzero(own_moved)
        new_labels, new_dist = assign(x[rows], centres, backend)
        changed = bool((new_labels != labels[rows]).any())
        labels[rows], dist[rows] = new_labels, new_dist
    ids = np.flatnonzero(moved)
    rest = np.flatnonzero(~own_moved)
    if len(ids) and len(rest):
        near, near_dist = assign(x[rest], centres[ids], backend)
        better = near_dist < dist[rest]
        if better.any():
            changed = True
            labels[rest[better]] = ids[near[better]]
            dist[rest[better]] = near_dist[better]
    return changed
