"""k-means++ seeding (Arthur & Vassilvitskii 2007): every centre after the first is drawn
with probability proportional to D², its squared distance to the nearest centre so far.

Two variants, for two papers' reference code:

- `kmeans_pp`, as BADGE uses it (Ash et al., ICLR 2020, Sec. 3 and Algorithm 1): the
  first centre is the point of largest norm, one D² draw per centre, no Lloyd
  iterations. Works on factorised points ``scale[i] ⊗ features[i]`` (BADGE's gradient
  embeddings, never materialised) and on dense vectors. D² is kept as lazy upper bounds
  (`alharness.ops.mindist.NearestCentre`) and sampled exactly by rejection, so each pick
  touches a batch of proposals instead of the whole pool.
- `greedy_seeding`, as scikit-learn's ``KMeans`` seeds by default (ALFA-Mix's official
  clustering step, `alharness.ops.kmeans`): a uniform first centre, then the best of
  several D² draws per centre. Choosing the best needs every point's exact D², so the lazy
  bounds do not help there; the draws' distances are computed in blocks instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from alharness.ops.mindist import (
    BLOCK_ELEMENTS,
    FactorisedPoints,
    NearestCentre,
    single_threaded_blas,
)

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


@dataclass(frozen=True)
class Seeding:
    """``picks``: positions of the seeds, in seeding order. ``labels``/``d2``: per point,
    the seed (0 … len(picks) − 1) nearest to it and its squared distance — Lloyd's first
    assignment, which the seeding computes anyway."""

    picks: np.ndarray
    labels: np.ndarray
    d2: np.ndarray


def greedy_kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator,
                     max_trials: int | None = None) -> np.ndarray:
    """``min(k, n)`` distinct row positions of ``x``: scikit-learn's greedy k-means++
    (`greedy_seeding`)."""
    return greedy_seeding(x, k, rng, max_trials).picks


def greedy_seeding(x: np.ndarray, k: int, rng: np.random.Generator,
                   max_trials: int | None = None) -> Seeding:
    """scikit-learn's greedy k-means++ (its ``KMeans`` default) on the rows of ``x``.

    The first centre is uniform; each later step draws ``trials`` candidates i.i.d. ∝ D²
    (2 + ⌊ln k⌋, scikit-learn's ``n_local_trials``, at most ``max_trials``) and keeps the
    one whose addition lowers Σ D² the most (ties: the earlier draw). One trial is plain
    D² sampling. If every point sits on a centre (copies), the rest are drawn uniformly
    without replacement.

    The candidates' distances to every point are computed in *rounds*: a block of
    proposals is drawn ∝ D² as it is at the start of the round, and their dot products
    with every point come from one matrix product (compute-bound, where scikit-learn's one
    small product per step is memory-bound). Within the round a proposal is accepted with
    probability D²_now/D²_round, so every candidate is still an exact draw ∝ the current
    D² (`tests/test_ops_kcenter_kmeanspp.py` checks the law). Cost: trials · n · k · d
    multiply-adds, the work of ``trials`` Lloyd iterations; memory O(n·d) plus the
    round's block of max(2²³, 8 · trials · n) floats at most.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    k = max(0, min(int(k), n))
    if k == 0:
        return Seeding(np.empty(0, np.int64), np.zeros(n, np.int64), np.full(n, np.inf, np.float32))
    trials = local_trials(k, max_trials)
    size = max(8 * trials, min(BLOCK_ELEMENTS // n, 2 * trials * k))  # proposals per round
    rounds = _Rounds(x, rng, size)
    first = int(rng.integers(n))
    d2 = np.full(n, np.inf, dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    picks = [first]
    _lower(d2, labels, rounds.dots(np.array([first]))[0], rounds.norms, rounds.norms[first], 0)
    d2[first] = 0.0
    while len(picks) < k:
        if not d2.sum(dtype=np.float64) > 0.0:  # every point sits on a centre
            taken = np.zeros(n, dtype=bool)
            taken[picks] = True
            rest = rng.permutation(np.flatnonzero(~taken))[: k - len(picks)]
            labels[rest] = np.arange(len(picks), len(picks) + len(rest))
            d2[rest] = 0.0
            picks.extend(rest.tolist())
            break
        best, dots = rounds.best_of(trials, d2)
        _lower(d2, labels, dots, rounds.norms, rounds.norms[best], len(picks))
        d2[best], labels[best] = 0.0, len(picks)
        picks.append(best)
    return Seeding(np.asarray(picks, dtype=np.int64), labels, d2)


def local_trials(k: int, max_trials: int | None = None) -> int:
    """scikit-learn's candidates per step, 2 + ⌊ln k⌋, at most ``max_trials`` (≥ 1)."""
    if max_trials is not None and max_trials < 1:
        raise ValueError(f"max_trials must be ≥ 1 or None, got {max_trials}")
    trials = 2 + int(np.log(max(k, 1)))
    return trials if max_trials is None else min(trials, int(max_trials))


class _Rounds:
    """Proposals drawn ∝ D² in blocks, with their dot products with every point."""

    def __init__(self, x: np.ndarray, rng: np.random.Generator, size: int) -> None:
        self.x = x
        self.norms = np.einsum("ij,ij->i", x, x)
        self.rng = rng
        self.size = size
        self.proposals = np.empty(0, dtype=np.int64)
        self.thresholds = np.empty(0)
        self.block = np.empty((0, len(x)), dtype=np.float32)
        self.cursor = 0

    def dots(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), n) dot products of points ``idx`` with every point."""
        return self.x[idx] @ self.x.T

    def best_of(self, trials: int, d2: np.ndarray) -> tuple[int, np.ndarray]:
        """The best of ``trials`` candidates drawn ∝ ``d2``: (its position, its dot row)."""
        best_gain, best, row = -np.inf, -1, d2
        need = trials
        while need:
            if self.cursor == len(self.proposals):
                self._draw(d2)
            rest = slice(self.cursor, None)
            hits = self.cursor + np.flatnonzero(
                self.thresholds[rest] < d2[self.proposals[rest]])[:need]
            if not len(hits):
                self.cursor = len(self.proposals)
                continue
            gains = _gains(d2, self.block, hits, self.norms, self.norms[self.proposals[hits]])
            j = int(np.argmax(gains))
            if gains[j] > best_gain:
                best_gain, best, row = gains[j], int(self.proposals[hits[j]]), self.block[hits[j]]
            need -= len(hits)
            self.cursor = int(hits[-1]) + 1
        return best, row  # a view of its round's block, which outlives the round

    def _draw(self, d2: np.ndarray) -> None:
        cumulative = np.cumsum(d2, dtype=np.float64)
        draws = self.rng.random(self.size) * cumulative[-1]
        self.proposals = np.minimum(np.searchsorted(cumulative, draws, side="right"),
                                    len(d2) - 1)
        self.thresholds = self.rng.random(self.size) * d2[self.proposals]
        self.block = self.dots(self.proposals)
        self.cursor = 0


@numba.njit(cache=True, fastmath=True)
def _gains(d2: np.ndarray, dots: np.ndarray, rows: np.ndarray, norms: np.ndarray,
           row_norms: np.ndarray) -> np.ndarray:
    """Σ_i max(0, d2[i] − ‖x_i − c‖²) for each candidate c (a row of ``dots``): how much
    adding it would lower Σ D². One fused pass per candidate, distances formed on the fly
    (|x|² + |c|² − 2x·c, clipped at 0), so the round's block is never rewritten; the
    inputs are finite, as fastmath assumes."""
    out = np.zeros(len(rows))
    for j in range(len(rows)):
        row = dots[rows[j]]
        c = row_norms[j]
        total = 0.0
        for i in range(len(d2)):
            dist = max(norms[i] + c - np.float32(2.0) * row[i], np.float32(0.0))
            total += max(d2[i] - dist, np.float32(0.0))
        out[j] = total
    return out


@numba.njit(cache=True, fastmath=True)
def _lower(d2: np.ndarray, labels: np.ndarray, dots: np.ndarray, norms: np.ndarray,
           c: float, label: int) -> None:
    """A centre with dot products ``dots`` and squared norm ``c`` joins: lower D² where it
    is nearer, and record it as those points' nearest centre."""
    for i in range(len(d2)):
        dist = max(norms[i] + c - np.float32(2.0) * dots[i], np.float32(0.0))
        if dist < d2[i]:
            d2[i] = dist
            labels[i] = label
