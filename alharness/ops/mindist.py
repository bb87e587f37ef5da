"""Squared distance from every pool point to its nearest centre, for a growing centre set.

Shared by greedy k-center (`alharness.ops.kcenter`) and k-means++ seeding
(`alharness.ops.kmeans_pp`). Both add one centre per step; the obvious update (one
(n × d) mat-vec per new centre) is memory-bound, so at n = 100,000, d = 512 and 5,000
centres it streams ~1 TB through the CPU. Instead `NearestCentre` keeps, per point, an
*upper bound* on its nearest-centre distance and the number of centres the bound has
seen. The callers only need exact values for a small group of points at a time (the
largest bounds, or a batch of D² proposals): that group is made exact with one blocked
matrix-matrix product and then tracked centre by centre with cache-sized mat-vecs,
while every other bound is left stale. Results are exact: a bound never undercuts the
true value, and the callers only act on exact values.

Points are *factorised*: row i is ``scale[i] ⊗ features[i]`` (BADGE's gradient
embedding, Ash et al. 2020, Sec. 3), with

    ‖a⊗b − c⊗e‖² = |a|²|b|² + |c|²|e|² − 2 (a·c)(b·e),

so the C·d-dimensional vectors are never built. Dense vectors are the case C = 1,
scale = 1 (`FactorisedPoints.dense`). Memory is O(n·(C + d)) plus fixed-size blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

#: Elements of one (points × centres) block in bulk distance computations (32 MiB float32).
BLOCK_ELEMENTS = 1 << 23


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # scanning loaded libraries is slow: do it once


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """For loops of small, cache-sized mat-vecs (one per pick): BLAS threads only add
    synchronisation there, and on a busy 2-core machine a threaded 1024 × 512 float32
    mat-vec was measured at ~15 ms instead of ~0.1 ms. Bulk products stay threaded."""
    with _blas().limit(limits=1, user_api="blas"):
        yield


@dataclass(frozen=True)
class FactorisedPoints:
    """n points ``scale[i] ⊗ features[i]``, float32, C-contiguous."""

    scale: np.ndarray  # (n, C)
    features: np.ndarray  # (n, d)

    def __post_init__(self) -> None:
        if self.scale.ndim != 2 or self.features.ndim != 2 or len(self.scale) != len(self.features):
            raise ValueError(f"scale (n, C) and features (n, d) must share n; got "
                             f"{self.scale.shape} and {self.features.shape}")
        object.__setattr__(self, "scale", np.ascontiguousarray(self.scale, dtype=np.float32))
        object.__setattr__(self, "features", np.ascontiguousarray(self.features, dtype=np.float32))

    @classmethod
    def dense(cls, x: np.ndarray) -> FactorisedPoints:
        """Plain vectors as ``1 ⊗ x``."""
        x = np.asarray(x)
        return cls(np.ones((len(x), 1), dtype=np.float32), x)

    def __len__(self) -> int:
        return len(self.features)

    def sq_norms(self) -> np.ndarray:
        """|a|²·|b|² per point, float32."""
        return np.einsum("ij,ij->i", self.scale, self.scale) * np.einsum(
            "ij,ij->i", self.features, self.features)

    def take(self, idx: np.ndarray | slice) -> FactorisedPoints:
        return FactorisedPoints(self.scale[idx], self.features[idx])


def sq_dists(points: FactorisedPoints, centres: FactorisedPoints,
             point_norms: np.ndarray | None = None,
             centre_norms: np.ndarray | None = None) -> np.ndarray:
    """(n, m) squared Euclidean distances via the factorised identity, clipped at 0.

    Materialises the full (n, m) matrix: callers block over ``centres``.
    """
    pn = points.sq_norms() if point_norms is None else point_norms
    cn = centres.sq_norms() if centre_norms is None else centre_norms
    out = points.features @ centres.features.T
    if points.scale.shape[1] == 1:  # dense vectors (or scalar scales): no second (n, m) product
        out *= points.scale
        out *= centres.scale[:, 0]
    else:
        out *= points.scale @ centres.scale.T
    out *= -2.0
    out += pn[:, None]
    out += cn[None, :]
    return np.maximum(out, 0.0, out=out)


def min_sq_dists(points: FactorisedPoints, centres: FactorisedPoints,
                 out: np.ndarray | None = None, point_norms: np.ndarray | None = None,
                 block_elements: int = BLOCK_ELEMENTS,
                 centre_norms: np.ndarray | None = None) -> np.ndarray:
    """Squared distance to the nearest of ``centres`` (min-ed into ``out`` if given).

    Blocks over the centres so the working set is about ``block_elements`` floats: never
    an (n × m) matrix, whatever m (e.g. the labelled set for CoreSet).
    """
    pn = points.sq_norms() if point_norms is None else point_norms
    if out is None:
        out = np.full(len(points), np.inf, dtype=np.float32)
    cn = centres.sq_norms() if centre_norms is None else centre_norms
    step = max(1, block_elements // max(len(points), 1))
    for start in range(0, len(centres), step):
        block = slice(start, start + step)
        d = sq_dists(points, centres.take(block), pn, cn[block])
        np.minimum(out, d.min(axis=1), out=out)
    return out


class NearestCentre:
    """Lazily maintained upper bounds ``bound[i] ≥ min_c ‖x_i − c‖²`` over a growing centre set.

    ``bound[i]`` has accounted for all ``initial`` centres and the first ``synced[i]``
    added ones; it is exact when ``synced[i] == count``. Added centres are pool points
    (`add`), kept in a contiguous buffer so refreshing a group of points is one blocked
    matrix-matrix product over the centres that group has not seen yet.
    """

    def __init__(self, points: FactorisedPoints, capacity: int,
                 initial: FactorisedPoints | None = None,
                 block_elements: int = BLOCK_ELEMENTS) -> None:
        n = len(points)
        self.points = points
        self.norms = points.sq_norms()
        self.block_elements = block_elements
        self.bound = np.full(n, np.inf, dtype=np.float32)
        if initial is not None and len(initial):
            min_sq_dists(points, initial, self.bound, self.norms, block_elements)
        self.synced = np.zeros(n, dtype=np.int64)
        self.centres = FactorisedPoints(
            np.empty((capacity, points.scale.shape[1]), np.float32),
            np.empty((capacity, points.features.shape[1]), np.float32))
        self.centre_norms = np.empty(capacity, dtype=np.float32)
        self.count = 0

    def add(self, i: int) -> None:
        """Make pool point ``i`` a centre (its bound becomes 0)."""
        self.centres.scale[self.count] = self.points.scale[i]
        self.centres.features[self.count] = self.points.features[i]
        self.centre_norms[self.count] = self.norms[i]
        self.count += 1
        self.bound[i] = 0.0
        self.synced[i] = self.count

    def refresh(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Make the bounds of points ``idx`` (all points if None) exact; return them.

        The stale ones are compared, in blocks, with every centre added since the oldest
        of them was synced; re-comparing a centre a point has already seen is harmless.
        """
        everyone = idx is None
        if everyone:
            idx = np.arange(len(self.points))
        stale = idx[self.synced[idx] < self.count]
        if len(stale):
            pending = slice(int(self.synced[stale].min()), self.count)
            whole = everyone and len(stale) == len(self.points)
            group = self.points if whole else self.points.take(stale)
            norms = self.norms[stale]
            best = self.bound[stale]
            min_sq_dists(group, self.centres.take(pending), best, norms,
                         self.block_elements, self.centre_norms[pending])
            self.bound[stale] = best
            self.synced[stale] = self.count
        return self.bound[idx]

    def to_last(self, group: FactorisedPoints, group_norms: np.ndarray) -> np.ndarray:
        """Squared distances from a gathered group of points to the newest centre."""
        last = self.count - 1
        dots = group.scale @ self.centres.scale[last]
        dots *= group.features @ self.centres.features[last]
        d = group_norms + self.centre_norms[last] - 2.0 * dots
        return np.maximum(d, 0.0, out=d)
