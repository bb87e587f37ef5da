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
    Once every remaining point sits on a centre (duplicates), the rest are taken in pool
    order at radius 0.
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
    lazy = NearestCentre(pool, capacity=k, initial=initial)
    picks: list[int] = []
    radii: list[float] = []
    if (initial is None or len(initial) == 0) and k > 0:
        first = int(rng.integers(n)) if rng is not None else 0
        radii.append(np.inf)
        picks.append(first)
        lazy.add(first)
        lazy.refresh()
    active = min(n, ACTIVE)
    while True:
        made = _phase(lazy, active, k, picks, radii)
        if len(radii) == k + 1:
            return KCenterResult(np.asarray(picks, dtype=np.int64), np.asarray(radii))
        if made < active // 8:
            active = min(n, 2 * active)


def _phase(lazy: NearestCentre, active: int, k: int, picks: list[int], radii: list[float]) -> int:
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
    values = lazy.refresh(members)
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
            if values[j] == 0.0:  # every bound is 0, hence exact: the rest cost nothing
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
            values[j] = 0.0
            made += 1
    lazy.bound[members] = values
    lazy.synced[members] = lazy.count
    return made
