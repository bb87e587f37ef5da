"""k-means++ seeding (Arthur & Vassilvitskii 2007) as BADGE uses it (Ash et al., ICLR 2020,
Sec. 3 and Algorithm 1): the first centre is the point of largest norm, every later one is
drawn with probability proportional to D², its squared distance to the nearest centre so
far. Only the seeding: BADGE runs no Lloyd iterations.

Works on factorised points ``scale[i] ⊗ features[i]`` (BADGE's gradient embeddings,
never materialised) and on dense vectors. D² is kept as lazy upper bounds
(`alharness.ops.mindist.NearestCentre`) and sampled exactly by rejection, so each pick
touches a batch of proposals instead of the whole pool.
"""

from __future__ import annotations

import numpy as np

from alharness.ops.mindist import FactorisedPoints, NearestCentre, single_threaded_blas

#: Proposals drawn (and made exact together) per batch; see `kmeans_pp`.
PROPOSALS = 1024


def kmeans_pp(points: np.ndarray | FactorisedPoints, k: int,
              rng: np.random.Generator) -> np.ndarray:
    """``min(k, n)`` distinct positions into ``points``, in seeding order.

    Exact D² sampling by rejection: a batch of proposals is drawn i.i.d. with probability
    ∝ the current upper bounds, made exact together (one blocked matrix product), and
    consumed in order; a proposal is accepted with probability D²/bound, where D² counts
    every centre chosen so far, including earlier ones from the same batch (the bounds
    stay upper bounds, so the accepted point is distributed ∝ D²). A chosen point has
    D² = 0 and is never taken again (the reference code redraws instead; the distribution
    is the same). If every remaining point sits on a centre (all D² = 0: duplicates), the
    rest are drawn uniformly without replacement.
    """
    pool = points if isinstance(points, FactorisedPoints) else FactorisedPoints.dense(points)
    n = len(pool)
    k = max(0, min(int(k), n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    lazy = NearestCentre(pool, capacity=k)
    first = int(np.argmax(lazy.norms))
    lazy.add(first)
    lazy.refresh()
    picks = [first]
    taken = np.zeros(n, dtype=bool)
    taken[first] = True
    while len(picks) < k:
        cumulative = np.cumsum(lazy.bound, dtype=np.float64)
        if not cumulative[-1] > 0.0:  # bounds are all 0, hence exact
            rest = rng.permutation(np.flatnonzero(~taken))[: k - len(picks)]
            picks.extend(rest.tolist())
            break
        made, used = _consume(lazy, cumulative, rng, k, picks, taken)
        if made * 8 < used:  # bounds too stale to propose well: make them all exact
            lazy.refresh()
    return np.asarray(picks, dtype=np.int64)


def _consume(lazy: NearestCentre, cumulative: np.ndarray, rng: np.random.Generator, k: int,
             picks: list[int], taken: np.ndarray) -> tuple[int, int]:
    """Draw one batch of proposals ∝ the bounds and accept from it until it runs out.

    Returns (points accepted, proposals used)."""
    draws = rng.random(PROPOSALS) * cumulative[-1]
    proposals = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(cumulative) - 1)
    bounds = lazy.bound[proposals]
    thresholds = rng.random(PROPOSALS) * bounds
    members, slot = np.unique(proposals, return_inverse=True)
    exact = lazy.refresh(members)
    group = lazy.points.take(members)
    group_norms = lazy.norms[members]
    start, made = 0, 0
    with single_threaded_blas():
        while len(picks) < k:
            accept = (thresholds[start:] < exact[slot[start:]]) & ~taken[proposals[start:]]
            hits = np.flatnonzero(accept)
            if not len(hits):
                start = PROPOSALS
                break
            j = start + int(hits[0])
            i = int(proposals[j])
            picks.append(i)
            taken[i] = True
            lazy.add(i)
            np.minimum(exact, lazy.to_last(group, group_norms), out=exact)
            exact[slot[j]] = 0.0
            start, made = j + 1, made + 1
    lazy.bound[members] = exact
    lazy.synced[members] = lazy.count
    return made, start
