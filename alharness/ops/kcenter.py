"""Greedy k-center (Gonzalez 1985), the selection rule of CoreSet (Sener & Savarese, ICLR
2018, Sec. 4.1, Algorithm 1): repeatedly add the pool point farthest from every centre.

Exact, with memory O(n·d): distances to the initial centres (CoreSet's labelled set) are
computed in blocks over those centres, and distances to picked centres are kept as lazy
upper bounds (`alharness.ops.mindist.NearestCentre`): only the points with the largest
bounds are kept exact, so a pick costs a mat-vec over about a thousand points instead of
a pass over the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alharness.ops.equal_rows import equal_row_groups
from alharness.ops.mindist import FactorisedPoints, NearestCentre, single_threaded_blas

#: Points kept exact at a time (doubled when a phase makes few picks); see `_phase`.
ACTIVE = 1024


@dataclass(frozen=True)
class KCenterResult:
    """``picks``: positions into the pool, in pick order. ``radii[t]``: the cover radius
    (largest distance from a pool point to its nearest centre) after ``t`` picks, so
    ``radii[0]`` is before any pick (inf without initial centres) and ``radii[-1]`` is final."""

    picks: np.ndarray
    radii: np.ndarray

    @property
    def radius(self) -> float:
        return float(self.radii[-1])


def kcenter_greedy(points: np.ndarray | FactorisedPoints, k: int,
                   centres: np.ndarray | FactorisedPoints | None = None,
                   rng: np.random.Generator | None = None) -> KCenterResult:
    """Pick ``min(k, n)`` pool points greedily, each the farthest from all centres so far.

    ``centres`` (e.g. the labelled set) start the centre set and are never picked. With
    none, the first pick is uniform from ``rng`` (position 0 without one); any start keeps
    Gonzalez's 2-approximation of the optimal cover radius. Exact ties are broken
    deterministically but in no promised order. Dense inputs are centred on the pool mean
    first (distances do not change; float32 cancellation in |x|² + |c|² − 2x·c does).

    Distance 0 is decided exactly: a point that is an exact copy of a centre (equal rows,
    `alharness.ops.equal_rows`) is at 0, every other point above 0. Float32 alone cannot
    tell: it puts copies of embeddings with ‖x‖² ≈ 2,000 at 0.016–0.031. So once every
    remaining point is a copy of a centre, the rest are taken in pool order at radius 0
    exactly. Distances between distinct points below float32's resolution (≈ √(ε·‖x‖²))
    are ordered by rounding noise. The copy test costs one hash pass over the rows
    (measured: no difference within noise at 100,000 × 512, batch 5,000; see `_Copies`).
    """
    if isinstance(points, FactorisedPoints):
        pool = points
        initial = centres if isinstance(centres, FactorisedPoints) or centres is None \
            else FactorisedPoints.dense(centres)
    else:
        x = np.asarray(points, dtype=np.float32)
        shift = x.mean(axis=0, dtype=np.float64).astype(np.float32) if len(x) else 0.0
        pool = FactorisedPoints.dense(x - shift)
        initial = None if centres is None else FactorisedPoints.dense(
            np.asarray(centres, dtype=np.float32).reshape(-1, x.shape[1]) - shift)
    n = len(pool)
    k = max(0, min(int(k), n))
    if n == 0:
        return KCenterResult(np.empty(0, np.int64), np.zeros(1))
    if initial is not None and not len(initial):
        initial = None
    lazy = NearestCentre(pool, capacity=k, initial=initial)
    copies = _Copies(pool, initial)
    lazy.bound[copies.covered_points()] = 0.0
    picks: list[int] = []
    radii: list[float] = []
    if initial is None and k > 0:
        first = int(rng.integers(n)) if rng is not None else 0
        radii.append(np.inf)
        picks.append(first)
        lazy.add(first)
        lazy.refresh()
        lazy.bound[copies.cover(first)] = 0.0
    np.maximum(lazy.bound, copies.floor(), out=lazy.bound)
    active = min(n, ACTIVE)
    while True:
        made = _phase(lazy, copies, active, k, picks, radii)
        if len(radii) == k + 1:
            return KCenterResult(np.asarray(picks, dtype=np.int64), np.asarray(radii))
        if made < active // 8:
            active = min(n, 2 * active)


def _phase(lazy: NearestCentre, copies: _Copies, active: int, k: int, picks: list[int],
           radii: list[float]) -> int:
    """Greedy picks among the ``active`` points with the largest bounds, kept exact.

    Every other point's bound is at most ``threshold``, so while the best exact value in
    the active set reaches it, that point is the global arg-max. Each pick then costs one
    (active × d) mat-vec on a cache-sized block instead of one over the pool. Returns the
    number of picks made; appends to ``picks`` and ``radii`` (the last one once ``k`` is reached).
    """
    n = len(lazy.bound)
    if active >= n:
        members, threshold = np.arange(n), -np.inf
    else:
        order = np.argpartition(lazy.bound, n - active - 1)
        members, threshold = order[n - active:], float(lazy.bound[order[n - active - 1]])
    floor = copies.floor(members)
    values = np.maximum(lazy.refresh(members), floor)
    group = lazy.points.take(members)
    group_norms = lazy.norms[members]
    made = 0
    with single_threaded_blas():
        while True:
            j = int(np.argmax(values))
            if values[j] < threshold:
                break
            radii.append(float(np.sqrt(values[j])))
            if len(picks) == k:
                break
            if values[j] == 0.0:  # every remaining point is a copy of a centre (exact test)
                taken = np.zeros(n, dtype=bool)
                taken[picks] = True
                rest = np.flatnonzero(~taken)[: k - len(picks)]
                picks.extend(rest.tolist())
                radii.extend([0.0] * len(rest))
                break
            i = int(members[j])
            picks.append(i)
            lazy.add(i)
            np.minimum(values, lazy.to_last(group, group_norms), out=values)
            values[j] = floor[j] = 0.0
            twins = copies.cover(i)
            if len(twins):
                lazy.bound[twins] = 0.0
                inside = np.flatnonzero(np.isin(members, twins))
                values[inside] = floor[inside] = 0.0
            np.maximum(values, floor, out=values)  # only a copy of a centre reads 0
            made += 1
    lazy.bound[members] = values
    lazy.synced[members] = lazy.count
    return made


class _Copies:
    """Exact copies among the pool and the initial centres (`equal_rows`), so that a
    distance of 0 means "is a copy of a centre" and nothing else: copies of a centre are
    set to exactly 0, and every other point's float32 distance is kept ≥ the smallest
    normal float (a true distance below float32's resolution would otherwise round to 0).

    Cost, measured with ``bench_selection``'s CoreSet pool (100,000 × 512, 1,000 labelled,
    batch 5,000, 1,000 groups of near-copies; one thread, load ≈ 8 on 2 cores): the whole
    k-center took 2.59 s CPU against 2.65 s before (min of 4 alternated runs), i.e. no
    difference within noise; the hash pass alone takes ≈ 0.03 s."""

    def __init__(self, pool: FactorisedPoints, initial: FactorisedPoints | None) -> None:
        sets = [pool] if initial is None else [pool, initial]
        dense = all(p.scale.shape[1] == 1 and not (p.scale != 1.0).any() for p in sets)
        groups = equal_row_groups(*[p.features if dense else  # the scale carries nothing
                                    np.concatenate([p.scale, p.features], axis=1) for p in sets])
        self.group = groups[0]
        self.covered = np.zeros(max(int(g.max()) for g in groups) + 1, dtype=bool)
        if initial is not None:
            self.covered[groups[1]] = True
        shared = np.bincount(self.group, minlength=len(self.covered)) > 1
        in_shared = np.flatnonzero(shared[self.group])
        self.members = {}  # group -> its pool positions, only for groups of several points
        if len(in_shared):
            by_group = in_shared[np.argsort(self.group[in_shared], kind="stable")]
            cuts = np.flatnonzero(np.diff(self.group[by_group])) + 1
            for block in np.split(by_group, cuts):
                self.members[int(self.group[block[0]])] = block

    def covered_points(self) -> np.ndarray:
        return np.flatnonzero(self.covered[self.group])

    def cover(self, i: int) -> np.ndarray:
        """Pool point ``i`` became a centre: the pool positions of its copies (itself
        included; empty when it has none), now covered."""
        g = int(self.group[i])
        self.covered[g] = True
        return self.members.get(g, _NONE)

    def floor(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Lower limit of the squared distances of points ``idx`` (all if None)."""
        groups = self.group if idx is None else self.group[idx]
        return np.where(self.covered[groups], np.float32(0.0), _TINY).astype(np.float32)


_TINY = np.finfo(np.float32).tiny
_NONE = np.empty(0, dtype=np.int64)
