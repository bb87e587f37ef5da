"""Exact average-linkage HAC without the n² distance matrix: nearest-neighbour chains.

The result is SciPy's ``linkage(x, method="average")`` (Euclidean): the linkage of two
clusters is the mean distance over all their cross pairs, and the pair with the smallest
linkage merges first. SciPy, fastcluster and scikit-learn store all n(n−1)/2 distances
(8·n²/2 bytes: 10 GB at 50,000 points); here they are computed from the vectors as needed.

**Algorithm.** The nearest-neighbour chain (Murtagh 1983; Müllner 2011, "Modern
hierarchical, agglomerative clustering algorithms", §3.4): grow a chain a → NN(a) →
NN(NN(a)) … until its last two clusters are reciprocal nearest neighbours, merge them,
continue from the cluster below. Average linkage is *reducible* — linkage(A ∪ B, C) is
the size-weighted mean of linkage(A, C) and linkage(B, C), so it is never below the
smaller of them — hence a merge never brings a cluster closer to anything than its
nearest neighbour was, a reciprocal pair stays reciprocal whatever else merges, and
merging every reciprocal pair in any order gives the greedy (smallest-linkage-first)
dendrogram. That is why the result is exact, not an approximation.

**Rows instead of a matrix.** Each cluster A that a chain visits needs its *row*
r_A[j] = Σ_{a∈A} ‖x_a − x_j‖ over every point j (float64); linkage(A, C) is
Σ_{j∈C} r_A[j] / (|A|·|C|), one pass over the row. A merged cluster's row is the sum of
its parts' rows (Lance–Williams for average linkage), so only singletons' rows come from
the vectors, and rows live in a bounded LRU cache (``cache_mb``). A row that was evicted
is recomputed from its cluster's points (|A|·n·d flops).

**Many chains, rows in blocks.** One row costs a pass over all n·d coordinates; done one
at a time that is memory-bound (~60 ms at 50,000 × 512). So ``chains`` NN-chains (64)
advance together: each runs until it needs a row that is not cached, and then all the
missing rows are computed in one pass, as a BLAS matrix product of their points against
all points (‖a‖² + ‖b‖² − 2a·b on mean-centred data). Any reciprocal pair may merge in
any order (reducibility), so several chains are as exact as one. Chains do not share
clusters: a chain whose nearest neighbour lies on another chain gives way (the one with
the larger index is dropped; its clusters are free again and their rows stay cached), so
chain 0 always proceeds and the run always ends. Nearest-neighbour queries of the chains
run in parallel (numba), the products on BLAS threads.

**Costs.** Time O(n²·d) for the rows (each singleton's row once, plus the recomputed
evicted ones) + O(n²) for the queries (about three per merge, each O(n)). Memory: the
data (float64, centred: 8·n·d bytes), O(n) for the clusters, ``chains`` × n scratch,
and the row cache (``cache_mb``; at least 3·``chains`` + 4 rows of 8·n bytes). The
chains' working set is ~10 % of n rows (simulated on varying-density data: 8.5 % at
16,000 points), i.e. ≈ 0.8·n² bytes, 2 GB at 50,000; a smaller cache trades memory
for recomputation (~+30–45 % of the row flops at a 5 % cache). ``scripts/bench_hac_exact.py``
measures time and peak memory against SciPy and fastcluster.

**Precision.** Distances are computed in float64 as ‖a‖² + ‖b‖² − 2a·b; where that is
below 10⁻⁴·(‖a‖² + ‖b‖²) (near-duplicates, where the subtraction cancels) the distance is
recomputed from the difference, so exact duplicates are at 0 and merge at height 0
like SciPy's. Sums are float64; heights agree with SciPy's to ~10⁻¹³ relative.

**Ties.** When several pairs share the smallest linkage there are several valid
dendrograms (SciPy's own depends on the input order). Ours is one of them: the top of a
chain prefers the cluster below it when that is within 10⁻¹² (relative) of its nearest
linkage — the NN-chain rule that makes tied chains end, widened so that last-bit
rounding (a linkage summed from A's row or from B's row) cannot make a chain cycle —
and otherwise the cluster with the smallest name. A cluster is named by one of its
points (the larger part keeps its name). Without ties the dendrogram is SciPy's.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
from numba import njit, prange

from alharness.ops.dendrogram import Merges, cut, merges_needed, threshold_for_mean_size

__all__ = ["exact_average_linkage", "exact_merges"]

NEAR_DUPLICATE = 1e-4  # below this fraction of ‖a‖² + ‖b‖², distances come from a − b
PARALLEL_MIN_N = 4096  # fewer points: row passes on one thread
TIE = 1e-12  # relative slack within which a chain top prefers the cluster below it
Progress = Callable[[int, int], None]


def exact_merges(x: np.ndarray, max_height: float = np.inf, *, cache_mb: float = 1024,
                 chains: int = 64, block_rows: int = 256,
                 progress: bool | Progress = False) -> Merges:
    """The average-linkage dendrogram of the rows of ``x`` (n, d), as `Merges`.

    ``max_height``: only the merges of height ≤ it are needed (for a cut at ε). A chain
    whose nearest linkage exceeds it is settled for good (reducibility: its clusters can
    only get farther from everything), which skips the large late merges. ``cache_mb``:
    the row cache (module doc). ``chains``: NN-chains advanced together, i.e. rows per
    BLAS pass. ``block_rows``: points per matrix product (memory block_rows·n·8 bytes).
    ``progress``: True for a tqdm bar, or a callback ``(settled, n − 1)`` called every
    few thousand merges; settled counts merges and clusters settled by ``max_height``.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"exact HAC needs a 2-d array of points, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("exact HAC: the points contain NaN or inf; drop or impute them first")
    n = x.shape[0]
    state = _State(x, chains, cache_mb)
    report = _progress_reporter(progress, max(n - 1, 0))
    every = max(2000, n // 50)
    settled = 0
    while state.n_alive[0] > 1:
        _advance(state.rows, state.slot, state.slot_name, state.stamp, state.label,
                 state.size, state.alive, state.alive_pos, state.n_alive, state.owner,
                 state.below, state.top, state.nn, state.nn_size, state.link, state.need, state.idle,
                 state.last_merged, state.acc, state.head, state.next, state.tail,
                 state.kept, state.absorbed, state.height, state.counters,
                 float(max_height), every)
        done = n - int(state.n_alive[0])
        if done - settled >= every or state.n_alive[0] <= 1:
            settled = done
            report(min(done, n - 1))
        if state.n_alive[0] <= 1:
            break
        wanted = np.unique(state.need[state.need >= 0])
        if len(wanted):
            state.fill_rows(wanted, block_rows)
            state.need[:] = -1
        state.idle[:] = 0
    report(None)
    m = int(state.counters[0])
    return Merges(state.kept[:m].copy(), state.absorbed[:m].copy(), state.height[:m].copy(), n)


def exact_average_linkage(x: np.ndarray, epsilon: float | None = None,
                          target_cluster_size: float | None = None, *,
                          progress: bool | Progress = False, cache_mb: float = 1024,
                          chains: int = 64) -> tuple[np.ndarray, float]:
    """Flat exact average-linkage clusters of the rows of ``x``: ``(labels, epsilon used)``.

    The semantics of the graph backend's `alharness.ops.hac.average_linkage`: give
    ``epsilon`` (clusters merge while their linkage ≤ ε, SciPy's
    ``fcluster(Z, t=ε, criterion="distance")``) or ``target_cluster_size`` (ε is the
    smallest merge height at which the mean cluster size reaches it,
    `threshold_for_mean_size`; ε = 0 for a target ≤ 1, which still joins exact
    duplicates). Labels are 0 … c−1.
    """
    if (epsilon is None) == (target_cluster_size is None):
        raise ValueError("give exactly one of epsilon and target_cluster_size")
    options = {"progress": progress, "cache_mb": cache_mb, "chains": chains}
    if epsilon is None and merges_needed(len(x), target_cluster_size) <= 0:
        epsilon = 0.0
    if epsilon is not None:
        epsilon = float(epsilon)
        return cut(exact_merges(x, epsilon, **options), epsilon), epsilon
    merges = exact_merges(x, **options)
    epsilon = threshold_for_mean_size(merges, float(target_cluster_size))
    return cut(merges, epsilon), epsilon


def _progress_reporter(progress: bool | Progress, total: int) -> Callable[[int | None], None]:
    """``report(settled)``; ``report(None)`` closes a tqdm bar."""
    if callable(progress):
        return lambda done: None if done is None else progress(done, total)
    if not progress:
        return lambda done: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="merge", desc="exact HAC")

    def report(done: int | None) -> None:
        if done is None:
            bar.close()
        else:
            bar.update(done - bar.n)

    return report


class _State:
    """The arrays the kernels share. Clusters are named by one of their points; a
    cluster's row sits in ``rows[slot[name]]`` when cached."""

    def __init__(self, x: np.ndarray, chains: int, cache_mb: float):
        n = x.shape[0]
        self.points = np.ascontiguousarray(x, dtype=np.float64)
        self.points = self.points - self.points.mean(axis=0) if n else self.points
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)
        ids = np.arange(n, dtype=np.int64)
        self.label = ids.copy()  # cluster of each point; n = settled (ignored by queries)
        self.size = np.ones(n, dtype=np.int64)
        self.head, self.tail = ids.copy(), ids.copy()  # member lists: head … next … tail
        self.next = np.full(n, -1, dtype=np.int64)
        self.alive, self.alive_pos = ids.copy(), ids.copy()
        self.n_alive = np.array([n], dtype=np.int64)
        self.owner = np.full(n, -1, dtype=np.int64)  # chain holding the cluster
        self.below = np.full(n, -1, dtype=np.int64)  # next cluster down its chain
        k = max(1, min(int(chains), n))
        self.top = np.full(k, -1, dtype=np.int64)
        self.nn = np.full(k, -1, dtype=np.int64)  # nearest neighbour of the top, if known
        self.nn_size = np.zeros(k, dtype=np.int64)  # its size then: changed = merged since
        self.link = np.full(k, np.inf)
        self.need = np.full(k, -1, dtype=np.int64)  # cluster whose row the chain waits for
        self.idle = np.zeros(k, dtype=np.int64)  # dropped: restart after the next pass
        self.last_merged = np.full(k, -1, dtype=np.int64)
        self.acc = np.zeros(n + 1)  # query scratch, indexed by cluster name
        slots = int(min(max(cache_mb * 2**20 / (8 * max(n, 1)), 3 * k + 4), max(n, 1)))
        self.rows = np.empty((slots, n))  # pages are touched only as rows are used
        self.slot = np.full(n, -1, dtype=np.int64)
        self.slot_name = np.full(slots, -1, dtype=np.int64)
        self.stamp = np.full(slots, -1, dtype=np.int64)  # LRU clock of each slot
        self.kept = np.empty(max(n - 1, 0), dtype=np.int64)
        self.absorbed = np.empty(max(n - 1, 0), dtype=np.int64)
        self.height = np.empty(max(n - 1, 0))
        # merges, LRU clock, start rotor, queries, chains dropped, passes, rows computed
        self.counters = np.zeros(7, dtype=np.int64)

    def fill_rows(self, names: np.ndarray, block_rows: int) -> None:
        """Compute the rows of clusters ``names`` from their points, in one pass of
        matrix products over the data, into least-recently-used slots."""
        tops = self.top[self.top >= 0]
        protect = np.concatenate([tops, self.below[tops], names])
        protect = protect[protect >= 0]
        slots = _take_slots(self.slot, self.slot_name, self.stamp, names, protect,
                            self.counters)
        points, dest = _members(names, slots, self.head, self.next, self.size)
        self.counters[5] += 1
        self.counters[6] += len(points)
        self.rows[slots] = 0.0
        threads = numba.get_num_threads()
        if len(self.label) < PARALLEL_MIN_N:  # a parallel region's start costs more here
            numba.set_num_threads(1)
        try:
            for start in range(0, len(points), block_rows):
                chunk = points[start:start + block_rows]
                dots = self.points[chunk] @ self.points.T
                _add_distances(dots, chunk, dest[start:start + block_rows], self.points,
                               self.sq_norms, self.rows)
        finally:
            numba.set_num_threads(threads)


@njit(cache=True)
def _take_slots(slot, slot_name, stamp, names, protect, counters):
    """A slot for each of ``names``: free ones first, then the least recently used whose
    cluster is not in ``protect`` (chain tops, the clusters below them, ``names``)."""
    keep = np.zeros(len(slot), dtype=np.bool_)
    for c in protect:
        keep[c] = True
    order = np.argsort(stamp)
    out = np.empty(len(names), dtype=np.int64)
    taken = 0
    for s in order:
        if taken == len(names):
            break
        owner = slot_name[s]
        if owner >= 0:
            if keep[owner]:
                continue
            slot[owner] = -1
        slot_name[s] = names[taken]
        slot[names[taken]] = s
        stamp[s] = counters[1]
        out[taken] = s
        taken += 1
    if taken < len(names):
        raise RuntimeError("exact HAC: row cache too small for the chains; raise cache_mb")
    return out


@njit(cache=True)
def _members(names, slots, head, nxt, size):
    """Every point of clusters ``names`` and the slot its distances add into."""
    total = 0
    for c in names:
        total += size[c]
    points = np.empty(total, dtype=np.int64)
    dest = np.empty(total, dtype=np.int64)
    i = 0
    for r in range(len(names)):
        c = names[r]
        s = slots[r]
        p = head[c]
        while p >= 0:
            points[i] = p
            dest[i] = s
            i += 1
            p = nxt[p]
    return points, dest


@njit(cache=True, parallel=True)
def _add_distances(dots, chunk, dest, points, sq_norms, rows):
    """rows[dest[i], j] += ‖x_chunk[i] − x_j‖ from the products ``dots`` (parallel over
    blocks of columns, so points of one cluster add into its row without races)."""
    n = points.shape[0]
    width = 1024
    for b in prange((n + width - 1) // width):
        lo = b * width
        hi = min(n, lo + width)
        d2 = np.empty(hi - lo)
        for i in range(len(chunk)):
            p = chunk[i]
            near = False
            for j in range(lo, hi):
                scale = sq_norms[p] + sq_norms[j]
                d2[j - lo] = scale - 2.0 * dots[i, j]
                near |= d2[j - lo] < NEAR_DUPLICATE * scale
            if near:  # rare: recompute the cancelling ones from the difference
                for j in range(lo, hi):
                    if d2[j - lo] < NEAR_DUPLICATE * (sq_norms[p] + sq_norms[j]):
                        d2[j - lo] = _squared_distance(points[p], points[j])
            row = rows[dest[i]]
            for j in range(lo, hi):
                row[j] += np.sqrt(max(d2[j - lo], 0.0))


@njit(cache=True)
def _squared_distance(a, b):
    total = 0.0
    for t in range(len(a)):
        diff = a[t] - b[t]
        total += diff * diff
    return total


@njit(cache=True)
def _advance(rows, slot, slot_name, stamp, label, size, alive, alive_pos, n_alive, owner,
             below, top, nn, nn_size, link, need, idle, last_merged, acc, head, nxt, tail,
             kept, absorbed, height, counters, max_height, budget):
    """Advance every chain until each waits for a row that is not cached (or is idle),
    or ``budget`` clusters have been settled. Each round, every chain with a cached top
    and no known nearest neighbour queries it; then, in chain order, each merges,
    pushes, gives way or is settled. (Serial: the row passes dominate the time, and
    short parallel regions stall badly on a loaded machine.)"""
    k_chains = len(top)
    n = len(label)
    start_alive = n_alive[0]
    while n_alive[0] > 1 and start_alive - n_alive[0] < budget:
        moved = _restart(top, idle, need, nn, last_merged, owner, below, alive, alive_pos,
                         n_alive, slot, counters)
        for k in range(k_chains):
            t = top[k]
            if t < 0 or need[k] >= 0 or nn[k] >= 0:
                continue
            stamp[slot[t]] = counters[1]
            nn[k], link[k] = _nearest(t, below[t], rows[slot[t]], label, size, alive,
                                      n_alive[0], acc, n)
            counters[3] += 1
            nn_size[k] = size[nn[k]]
        counters[1] += 1
        for k in range(k_chains):
            t = top[k]
            if t < 0 or need[k] >= 0 or nn[k] < 0:
                continue
            moved = True
            b = nn[k]
            u = below[t]
            if link[k] > max_height:
                _settle(k, top, nn, owner, below, label, alive, alive_pos, n_alive, slot,
                        slot_name, head, nxt, last_merged)
            elif b == u:
                if slot[u] < 0:  # its row was evicted: wait for the next pass
                    need[k] = u
                    continue
                keep = _merge(t, u, link[k], rows, slot, slot_name, stamp, label, size,
                              alive, alive_pos, n_alive, head, nxt, tail, kept, absorbed,
                              height, counters)
                top[k] = below[u]
                owner[t] = owner[u] = -1
                below[t] = below[u] = -1
                nn[k] = -1
                last_merged[k] = keep
                if top[k] >= 0 and slot[top[k]] < 0:  # evicted while deeper in the chain
                    need[k] = top[k]
            elif alive_pos[b] < 0 or size[b] != nn_size[k]:
                nn[k] = -1  # a chain before this one merged or settled it: ask again
            else:
                j = owner[b]
                if j == k or (0 <= j < k):
                    counters[4] += 1
                    _drop(k, top, nn, need, idle, owner, below)
                    continue
                if j >= 0:
                    counters[4] += 1
                    _drop(j, top, nn, need, idle, owner, below)
                owner[b] = k
                below[b] = t
                top[k] = b
                nn[k] = -1
                if slot[b] < 0:
                    need[k] = b
        if not moved:
            break


@njit(cache=True)
def _nearest(t, u, row, label, size, alive, count, acc, n):
    """Nearest cluster to ``t`` (row ``row``) and its linkage; ``u``, the cluster below
    ``t`` on its chain, wins ties (within TIE), then the smallest name."""
    for j in range(n):
        acc[label[j]] += row[j]
    best = np.inf
    arg = -1
    st = size[t]
    for i in range(count):
        c = alive[i]
        if c == t:
            continue
        value = acc[c] / (st * size[c])
        if value < best or (value == best and c < arg):
            best = value
            arg = c
    if u >= 0:
        value = acc[u] / (st * size[u])
        if value <= best * (1.0 + TIE):
            best = value
            arg = u
    for i in range(count):
        acc[alive[i]] = 0.0
    acc[n] = 0.0
    return arg, best


@njit(cache=True)
def _merge(t, u, h, rows, slot, slot_name, stamp, label, size, alive, alive_pos, n_alive,
           head, nxt, tail, kept, absorbed, height, counters):
    """Join clusters ``t`` and ``u`` at height ``h``; the larger keeps its name (ties:
    the smaller name), its row becomes the sum of both rows. Returns the name."""
    if size[u] > size[t] or (size[u] == size[t] and u < t):
        keep, gone = u, t
    else:
        keep, gone = t, u
    target = rows[slot[keep]]
    source = rows[slot[gone]]
    for j in range(len(target)):
        target[j] += source[j]
    stamp[slot[keep]] = counters[1]
    slot_name[slot[gone]] = -1
    stamp[slot[gone]] = -1
    slot[gone] = -1
    p = head[gone]
    while p >= 0:
        label[p] = keep
        p = nxt[p]
    nxt[tail[keep]] = head[gone]
    tail[keep] = tail[gone]
    size[keep] += size[gone]
    size[gone] = 0
    _remove_alive(gone, alive, alive_pos, n_alive)
    m = counters[0]
    kept[m] = keep
    absorbed[m] = gone
    height[m] = h
    counters[0] = m + 1
    return keep


@njit(cache=True)
def _settle(k, top, nn, owner, below, label, alive, alive_pos, n_alive, slot, slot_name,
            head, nxt, last_merged):
    """Chain ``k``'s top is farther than ``max_height`` from everything, and so (the
    chain's linkages only decrease upwards) is every cluster on it: they are final.
    Their points get label n, which the queries ignore."""
    n = len(label)
    c = top[k]
    while c >= 0:
        p = head[c]
        while p >= 0:
            label[p] = n
            p = nxt[p]
        if slot[c] >= 0:
            slot_name[slot[c]] = -1
            slot[c] = -1
        _remove_alive(c, alive, alive_pos, n_alive)
        owner[c] = -1
        nxt_c = below[c]
        below[c] = -1
        c = nxt_c
    top[k] = -1
    nn[k] = -1
    last_merged[k] = -1


@njit(cache=True)
def _drop(k, top, nn, need, idle, owner, below):
    """Give chain ``k`` up: its clusters are free again (rows stay cached)."""
    c = top[k]
    while c >= 0:
        owner[c] = -1
        nxt_c = below[c]
        below[c] = -1
        c = nxt_c
    top[k] = -1
    nn[k] = -1
    need[k] = -1
    idle[k] = 1


@njit(cache=True)
def _restart(top, idle, need, nn, last_merged, owner, below, alive, alive_pos, n_alive,
             slot, counters):
    """Start every empty, non-idle chain: at the cluster it merged last if that is free
    (its row is cached and its neighbours are close to the chain's other work), else at
    the next free cluster of the alive list. Returns whether any chain started."""
    started = False
    for k in range(len(top)):
        if top[k] >= 0 or idle[k]:
            continue
        s = last_merged[k]
        last_merged[k] = -1
        if s < 0 or alive_pos[s] < 0 or owner[s] >= 0:
            s = -1
            count = n_alive[0]
            for step in range(count):
                c = alive[(counters[2] + step) % count]
                if owner[c] < 0:
                    s = c
                    counters[2] = (counters[2] + step + 1) % count
                    break
        if s < 0:
            idle[k] = 1
            continue
        owner[s] = k
        below[s] = -1
        top[k] = s
        nn[k] = -1
        need[k] = s if slot[s] < 0 else -1
        started = True
    return started


@njit(cache=True)
def _remove_alive(c, alive, alive_pos, n_alive):
    i = alive_pos[c]
    last = alive[n_alive[0] - 1]
    alive[i] = last
    alive_pos[last] = i
    alive_pos[c] = -1
    n_alive[0] -= 1
