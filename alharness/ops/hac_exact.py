"""Exact average-linkage HAC without the n² distance matrix: nearest-neighbour chains.

The result is SciPy's ``linkage(x, method="average")`` on Euclidean distances — the
linkage of two clusters is the mean distance over all their cross pairs, the closest
pair merges first — computed without storing the n(n−1)/2 distances that SciPy,
fastcluster and scikit-learn hold (8·n²/2 bytes: 10 GB at 50,000 points).

**Algorithm.** Nearest-neighbour chains (Murtagh 1983; Müllner 2011, "Modern
hierarchical, agglomerative clustering algorithms", §3.4): grow a chain a → NN(a) →
NN(NN(a)) … until its last two clusters are each other's nearest neighbours, merge
them, continue from the cluster below. Average linkage is *reducible*:
linkage(A ∪ B, C) is the size-weighted mean of linkage(A, C) and linkage(B, C), never
below the smaller, so a merge never brings anything closer than its nearest neighbour
was. A pair of reciprocal nearest neighbours therefore stays one whatever merges
elsewhere, and merging such pairs in any order yields the greedy (closest pair first)
dendrogram: the result is exact, not an approximation, and many chains may run at once.

**Rows instead of a matrix.** A cluster A on a chain needs its *row*: for every live
cluster C, the float64 sum of the distances between their points; linkage(A, C) is
row_A[C] / (|A|·|C|). A merged cluster's row is the sum of its parts' rows, and in every
other row the merged cluster's entry is the sum of its parts' entries (Lance–Williams
for average linkage), applied lazily from a log of merges when a row is next read. So
rows come from the vectors only for singletons, and for rows that the bounded cache
(``cache_mb``) evicted: those are recomputed from the cluster's points. Eviction is
GreedyDual-Size with the cluster size (the recomputation cost) as the cost. When half
the columns are dead (merged away) the live ones are packed, so rows narrow and more of
them fit in the cache.

**Passes.** Computing rows means reading all n·d coordinates, so ``chains`` chains
(128) advance together, each until it needs a row that is not cached; then every missing
row is computed in one pass: BLAS products of their points against the pool
(‖a‖² + ‖b‖² − 2a·b, float64, on mean-centred data), turned into distances and summed per
cluster by a numba kernel over both cores. A cached row of cluster C already holds C's
sums to each requested cluster, so once much of the pool is in cached clusters only
the distances to the other points are computed (about half the flops of a run whose
rows all fit). Chains never share a cluster: a chain whose nearest neighbour lies on
another chain gives way (the one with the larger index is dropped; its clusters are
free again and keep their rows), so chain 0 always advances and every run ends. The
chains' queries and merges run serially between passes: they are a small part of the
time, and short parallel regions stall badly on a shared machine.

**Costs.** Time: O(n²·d) flops for the rows (``ExactMerges.point_rows`` / n is 1 when
no row was recomputed) + O(n²) for the nearest-neighbour queries (about three per merge,
each a pass over the live columns). Memory: the pool as centred float64 (8·n·d bytes)
plus one gathered copy of at most that size, O(n) integers, products of block_rows·n
float64, and the row cache: at most ``cache_mb`` (at least 3·chains + 4 rows of 8·n
bytes), touched only as rows are used: 0.5 GB at 10,000 points, 1.0 GB at 20,000 (×512);
from ~40,000 points 2 GB is full and evicted rows are recomputed (rows/n 1.07 at 40,000,
1.4 at 50,000; a 4 GB cache brings 50,000 back to 1.0 and 35 % less CPU). Measured with
``scripts/bench_hac_exact.py`` on 2 shared cores (load 4–7, niced; varying-density
mixtures; wall / CPU seconds, peak RSS), d = 512: 10,000 points 18 s / 8.5 s; 20,000
39 s / 25 s, 1.0 GB; 40,000 86 s / 83 s, 2.8 GB; 50,000 216 s / 142 s, 2.9 GB (4 GB
cache: 134 s / 128 s, 4.4 GB). SciPy takes 45 s at 10,000 and 101 s / 3.2 GB at 20,000,
fastcluster 124 s, scikit-learn 233 s; at 20,000 × 50 ours 23 s, SciPy 132 s,
fastcluster 35 s. Adjusted Rand index against SciPy's clusters: 1.0 in every row.

**Precision.** Where ‖a‖² + ‖b‖² − 2a·b is below 10⁻⁴·(‖a‖² + ‖b‖²) (near-duplicates,
where the subtraction cancels) the distance is recomputed from the difference a − b,
so exact duplicates are at 0 and merge at height 0 as in SciPy; elsewhere the relative
error is ≲ 10⁻¹¹. Heights agree with SciPy's to ~10⁻¹³ relative, so a cut between two
distinct merge heights is SciPy's (tested), while a cut *exactly at* a height depends on
the last bit of that height, as between any two codes that sum in another order.

**Ties.** When several pairs share the smallest linkage there are several valid
dendrograms, and they cut differently (SciPy's own answer depends on the input order).
Ours is one of them: a chain top takes the cluster below it on its chain when that is
within 10⁻¹² (relative) of its nearest linkage — the NN-chain rule that makes tied
chains end, widened so that last-bit rounding (a sum read from A's row or from B's)
cannot make a chain cycle — and otherwise the nearest cluster with the smallest name
(a cluster is named by one of its points: the larger part's name survives a merge).
Which valid dendrogram comes out also depends on ``chains`` and the cache. Without
ties the dendrogram is SciPy's.

**Compilation.** The numba kernels compile on first use and are cached on disk
(``cache=True``, next to this file or in ``NUMBA_CACHE_DIR``): 7–8 s of CPU the first
time, 0.6 s to load in a fresh process after that.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
from numba import njit, prange
from threadpoolctl import ThreadpoolController

from alharness.ops.dendrogram import Merges, cut, merges_needed, threshold_for_mean_size

__all__ = ["ExactMerges", "exact_average_linkage", "exact_merges"]

NEAR_DUPLICATE = 1e-4  # below this fraction of ‖a‖² + ‖b‖², distances come from a − b
TIE = 1e-12  # relative slack within which a chain top prefers the cluster below it
TRANSPOSE_COST = 500  # reading a cached row's entry ≈ this many multiply-adds (a miss)
PARALLEL_MIN = 1 << 26  # multiply-adds in a pass below which it runs on one thread
MAX_QUERIES_PER_POINT = 50  # a run takes about 3 per merge; far more means a livelock
Progress = Callable[[int, int], None]

# Rows of the int64 table ``ids``, one column per point id (column n: the label of
# settled points). Clusters are named by one of their points; COL_NAME is per column
# of the row cache (the cluster whose linkage sums that column holds).
LABEL, SIZE, HEAD, NEXT, TAIL, ALIVE, ALIVE_POS, OWNER, BELOW, COL, SLOT, COL_NAME = range(12)
# Rows of the per-chain table ``chain``.
TOP, NN, NN_SIZE, NEED, IDLE, LAST = range(6)
# Rows of the per-slot table ``slots``.
SLOT_NAME, PRIORITY, SYNCED = range(3)
# Entries of ``counters``.
(MERGES, FLOOR, ROTOR, QUERIES, DROPS, PASSES, POINT_ROWS, N_ALIVE, LOG_LEN, WIDTH,
 N_SLOTS) = range(11)


@dataclass(frozen=True)
class ExactMerges(Merges):
    """`Merges` of the exact backend, with what its row cache cost."""

    passes: int  # passes over the data that computed rows
    point_rows: int  # points whose distance rows were computed: n if no row was recomputed
    queries: int  # nearest-neighbour queries (about three per merge)
    dropped: int  # chains that gave way to another chain


def exact_merges(x: np.ndarray, max_height: float = np.inf, *, cache_mb: float = 2048,
                 chains: int = 128, block_rows: int = 256,
                 progress: bool | Progress = False) -> ExactMerges:
    """The average-linkage dendrogram of the rows of ``x`` (n, d), as `Merges`.

    ``max_height``: only the merges of height ≤ it are needed (for a cut at ε). A chain
    whose nearest linkage exceeds it is settled for good (reducibility: its clusters can
    only get farther from everything), which skips the large late merges. ``cache_mb``:
    the row cache (module doc). ``chains``: NN-chains advanced together, i.e. about the
    rows per pass over the data. ``block_rows``: points per matrix product (memory
    block_rows·n·8 bytes). ``progress``: True for a tqdm bar, or a callback
    ``(settled, n − 1)`` called every few thousand merges (settled counts merges and the
    clusters settled by ``max_height``).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"exact HAC needs a 2-d array of points, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("exact HAC: the points contain NaN or inf; drop or impute them first")
    if chains < 1 or block_rows < 1:
        raise ValueError(f"exact HAC needs chains ≥ 1 and block_rows ≥ 1, got {chains} and "
                         f"{block_rows}")
    state = _State(x, chains, cache_mb)
    n = state.n
    report = _progress_reporter(progress, max(n - 1, 0))
    every = max(2000, n // 50)
    reported = 0
    while state.counters[N_ALIVE] > 1:
        _advance(state.rows, state.ids, state.chain, state.link, state.slots,
                 state.col_size, state.log, state.counters, state.kept, state.absorbed,
                 state.height, float(max_height), every)
        if state.counters[QUERIES] > MAX_QUERIES_PER_POINT * n + 10_000:
            raise RuntimeError("exact HAC: the nearest-neighbour chains do not converge "
                               "(a bug: please report it with the data)")
        done = n - int(state.counters[N_ALIVE])
        if done - reported >= every or done >= n - 1:
            reported = done
            report(min(done, n - 1))
        if state.counters[N_ALIVE] <= 1:
            break
        state.compact_if_sparse()
        wanted = np.unique(state.chain[NEED][state.chain[NEED] >= 0])
        if len(wanted):
            state.fill_rows(wanted, block_rows)
            state.chain[NEED] = -1
        state.chain[IDLE] = 0
    report(None)
    c = state.counters
    m = int(c[MERGES])
    return ExactMerges(state.kept[:m].copy(), state.absorbed[:m].copy(),
                       state.height[:m].copy(), n, int(c[PASSES]), int(c[POINT_ROWS]),
                       int(c[QUERIES]), int(c[DROPS]))


def exact_average_linkage(x: np.ndarray, epsilon: float | None = None,
                          target_cluster_size: float | None = None, *,
                          progress: bool | Progress = False, cache_mb: float = 2048,
                          chains: int = 128, block_rows: int = 256) -> tuple[np.ndarray, float]:
    """Flat exact average-linkage clusters of the rows of ``x``: ``(labels, epsilon used)``.

    The semantics of the graph backend's `alharness.ops.hac.average_linkage`: give
    ``epsilon`` (clusters merge while their linkage ≤ ε, SciPy's
    ``fcluster(Z, t=ε, criterion="distance")``) or ``target_cluster_size`` (ε is the
    smallest merge height at which the mean cluster size reaches it,
    `threshold_for_mean_size`; ε = 0 for a target ≤ 1, which still joins exact
    duplicates). Labels are 0 … c−1. The other options are `exact_merges`'s.
    """
    if (epsilon is None) == (target_cluster_size is None):
        raise ValueError("give exactly one of epsilon and target_cluster_size")
    options = {"progress": progress, "cache_mb": cache_mb, "chains": chains,
               "block_rows": block_rows}
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
    """The arrays the kernels share, and the row cache.

    The cache is one flat float64 buffer viewed as ``rows`` (slots × width): row s holds,
    for the cluster in slot s, its distance sums to the cluster of every column. Columns
    of merged-away or settled clusters die; when half are dead the live ones are packed
    to the left (`compact_if_sparse`), which narrows every row and so fits more rows into
    the same buffer.
    """

    def __init__(self, x: np.ndarray, chains: int, cache_mb: float):
        n = self.n = x.shape[0]
        self.points = np.array(x, dtype=np.float64, order="C")  # a copy, centred in place:
        if n:  # ‖a‖² + ‖b‖² − 2a·b cancels less near the origin
            self.points -= self.points.mean(axis=0)
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)
        ids = np.arange(n + 1, dtype=np.int64)
        self.ids = np.empty((12, n + 1), dtype=np.int64)
        for row in (LABEL, HEAD, TAIL, ALIVE, ALIVE_POS, COL, COL_NAME):
            self.ids[row] = ids
        self.ids[SIZE] = 1
        self.ids[NEXT] = self.ids[OWNER] = self.ids[BELOW] = self.ids[SLOT] = -1
        self.ids[COL, n] = -1  # settled points count nowhere
        self.col_size = np.ones(n)  # size of each column's cluster, 0 once dead
        k = max(1, min(int(chains), n))
        self.chain = np.full((6, k), -1, dtype=np.int64)
        self.chain[IDLE] = 0  # 1: gave way; restarts after the next pass
        self.link = np.full(k, np.inf)  # linkage of each chain top to its NN
        self.slots = np.full((3, max(n, 1)), -1, dtype=np.int64)
        self.slots[SYNCED] = 0  # merges of the log already added into the row
        self.log = np.empty((2, max(n - 1, 1)), dtype=np.int64)  # merged columns (into, from)
        need = (3 * k + 4) * n  # every chain's top, the cluster below and a new row
        self.capacity = int(min(max(cache_mb * 2**20 / 8, need), max(n * n, need)))
        self.buffer = np.empty(self.capacity)  # pages are touched only as rows are used
        self.counters = np.zeros(11, dtype=np.int64)
        self.counters[N_ALIVE] = self.counters[WIDTH] = n
        self.counters[N_SLOTS] = min(self.capacity // max(n, 1), n)
        self.kept = np.empty(max(n - 1, 0), dtype=np.int64)
        self.absorbed = np.empty(max(n - 1, 0), dtype=np.int64)
        self.height = np.empty(max(n - 1, 0))
        self._buffers: dict[str, np.ndarray] = {}
        self._view()

    def _scratch(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A reused float64 buffer of that shape: a fresh large array would cost page
        faults on every pass."""
        buffer = self._buffers.get(name)
        if buffer is None or len(buffer) < rows * cols:
            buffer = self._buffers[name] = np.empty(rows * cols)
        return buffer[:rows * cols].reshape(rows, cols)

    def _view(self) -> None:
        slots, width = int(self.counters[N_SLOTS]), int(self.counters[WIDTH])
        self.rows = self.buffer[:slots * width].reshape(slots, width)

    def compact_if_sparse(self) -> None:
        """Pack the live columns once at most half of them are alive."""
        if self.counters[N_ALIVE] * 2 <= self.counters[WIDTH] and self.counters[WIDTH] > 64:
            _compact(self.buffer, self.ids, self.col_size, self.slots, self.log,
                     self.counters)
            self.counters[N_SLOTS] = min(self.capacity // int(self.counters[WIDTH]), self.n)
            self._view()

    def fill_rows(self, names: np.ndarray, block_rows: int) -> None:
        """Compute the rows of clusters ``names`` into slots (`_take_slots`), in one pass
        of matrix products over the data. A cluster C whose row is cached already holds
        the sum of distances to each of them (its own row, at their column), so when
        enough of the pool is in cached clusters, only the distances to the rest are
        computed: that halves the flops of a run whose cache holds most rows."""
        tops = self.chain[TOP][self.chain[TOP] >= 0]
        protect = np.concatenate([tops, self.ids[BELOW][tops], names])
        # freed slots (priority -2) first, then never used ones (-1), lowest first
        order = np.argsort(self.slots[PRIORITY, :self.counters[N_SLOTS]], kind="stable")
        slots = _take_slots(self.ids, self.slots, names, protect[protect >= 0], order,
                            self.counters)
        points, first = _members(names, self.ids)
        self.counters[PASSES] += 1
        self.counters[POINT_ROWS] += len(points)
        n, d = self.points.shape
        self.rows[slots] = 0.0
        others, cached = _uncached_points(names, self.rows, self.ids, self.slots, self.log,
                                          self.counters)
        if len(others) < n and (n - len(others)) * d > TRANSPOSE_COST * cached:
            _transpose_cached(names, slots, self.rows, self.ids, self.slots, self.counters)
            targets = np.take(self.points, others, axis=0,
                              out=self._scratch("targets", len(others), d))
            target_sq = self.sq_norms[others]
        else:  # little is cached: every distance from the points
            others, targets, target_sq = np.arange(n), self.points, self.sq_norms
        column = self.ids[COL][self.ids[LABEL][others]]  # -1: settled
        with _threads(len(points) * len(others) * d):
            for start in range(0, len(points), block_rows):
                chunk = points[start:start + block_rows]
                dots = np.matmul(self.points[chunk], targets.T,
                                 out=self._scratch("dots", len(chunk), len(others)))
                # requests (slices of ``chunk``) whose points lie in this chunk
                cuts = np.clip(first - start, 0, len(chunk))
                _add_distances(dots, chunk, cuts, slots, self.points, self.sq_norms,
                               targets, target_sq, column, self.rows)
        self.slots[SYNCED, slots] = self.counters[LOG_LEN]


@contextmanager
def _threads(work: int):
    """Numba and BLAS on one thread while a pass is small (``work``: multiply-adds):
    starting a parallel region costs more than it saves there, far more on a loaded
    machine."""
    if work >= PARALLEL_MIN:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


@njit(cache=True, parallel=True, error_model="numpy")
def _add_distances(dots, chunk, cuts, slots_of, points, sq_norms, targets, target_sq,
                   column, rows):
    """Add ‖x_p − y_j‖, for each point p of ``chunk`` and every target y_j, into the row
    of p's cluster at y_j's column. Cluster r owns chunk[cuts[r]:cuts[r + 1]]; the
    clusters run in parallel, each into its own row."""
    for r in prange(len(slots_of)):
        row = rows[slots_of[r]]
        for i in range(cuts[r], cuts[r + 1]):
            p = chunk[i]
            for j in range(len(targets)):
                c = column[j]
                if c < 0:
                    continue
                scale = sq_norms[p] + target_sq[j]
                d2 = scale - 2.0 * dots[i, j]
                if d2 < NEAR_DUPLICATE * scale:  # cancellation: use the difference
                    d2 = 0.0
                    for t in range(points.shape[1]):
                        diff = points[p, t] - targets[j, t]
                        d2 += diff * diff
                row[c] += np.sqrt(max(d2, 0.0))


@njit(cache=True, error_model="numpy")
def _uncached_points(names, rows, ids, slots, log, counters):
    """Bring every cached row up to date; return the points whose cluster has no cached
    row or is among ``names`` (their distances must be computed), and how many cached
    rows there are."""
    n = ids.shape[1] - 1
    wanted = np.zeros(n + 1, dtype=np.bool_)
    wanted[n] = True  # settled: skipped later anyway
    for c in names:
        wanted[c] = True
    cached = 0
    for s in range(counters[N_SLOTS]):
        c = slots[SLOT_NAME, s]
        if c >= 0 and not wanted[c]:
            _sync(s, rows[s], slots, log, counters)
            cached += 1
    count = 0
    out = np.empty(n, dtype=np.int64)
    for j in range(n):
        c = ids[LABEL, j]
        if wanted[c] or ids[SLOT, c] < 0:
            out[count] = j
            count += 1
    return out[:count], cached


@njit(cache=True, error_model="numpy")
def _transpose_cached(names, slots_of, rows, ids, slots, counters):
    """Row of each cluster X of ``names``, at the column of every cached cluster C (not
    in ``names``): the sum of their distances, read from C's row at X's column."""
    wanted = np.zeros(ids.shape[1], dtype=np.bool_)
    for c in names:
        wanted[c] = True
    for s in range(counters[N_SLOTS]):
        c = slots[SLOT_NAME, s]
        if c < 0 or wanted[c]:
            continue
        into = ids[COL, c]
        for r in range(len(names)):
            rows[slots_of[r], into] = rows[s, ids[COL, names[r]]]


@njit(cache=True, error_model="numpy")
def _take_slots(ids, slots, names, protect, order, counters):
    """A slot for each of ``names``, in ``order`` (the slots by priority): freed ones
    first, then never used ones (lowest first: untouched pages stay untouched), then by
    GreedyDual-Size — evict the lowest priority whose cluster is not in ``protect`` (chain tops, the clusters below them,
    ``names``); FLOOR rises to each evicted priority, and a row used or made gets
    FLOOR + its cluster's size (its recomputation cost), so cheap rows go first and an
    unused expensive one ages out as FLOOR passes it."""
    keep = np.zeros(ids.shape[1], dtype=np.bool_)
    for c in protect:
        keep[c] = True
    out = np.empty(len(names), dtype=np.int64)
    taken = 0
    for s in order:
        if taken == len(names):
            break
        owner = slots[SLOT_NAME, s]
        if owner >= 0:
            if keep[owner]:
                continue
            ids[SLOT, owner] = -1
            counters[FLOOR] = max(counters[FLOOR], slots[PRIORITY, s])
        slots[SLOT_NAME, s] = names[taken]
        ids[SLOT, names[taken]] = s
        out[taken] = s
        taken += 1
    for r in range(taken):
        slots[PRIORITY, out[r]] = counters[FLOOR] + ids[SIZE, names[r]]
    if taken < len(names):
        raise RuntimeError("exact HAC: row cache too small for the chains; raise cache_mb")
    return out


@njit(cache=True, error_model="numpy")
def _members(names, ids):
    """The points of clusters ``names``, cluster after cluster, and where each cluster
    starts (with the total at the end)."""
    first = np.empty(len(names) + 1, dtype=np.int64)
    first[0] = 0
    for r in range(len(names)):
        first[r + 1] = first[r] + ids[SIZE, names[r]]
    points = np.empty(first[-1], dtype=np.int64)
    for r in range(len(names)):
        i = first[r]
        p = ids[HEAD, names[r]]
        while p >= 0:
            points[i] = p
            i += 1
            p = ids[NEXT, p]
    return points, first


@njit(cache=True, error_model="numpy")
def _advance(rows, ids, chain, link, slots, col_size, log, counters, kept, absorbed,
             height, max_height, budget):
    """Advance every chain until each waits for a row that is not cached (or is idle),
    or ``budget`` clusters have been settled (or 8·budget queries made, so that the caller
    can check for a livelock). Each round, every chain with a cached top
    and no known nearest neighbour queries it; then, in chain order, each merges,
    pushes, gives way or is settled. (Serial: the row passes take most of the time, and
    short parallel regions stall badly on a loaded machine.)"""
    start_alive = counters[N_ALIVE]
    start_queries = counters[QUERIES]
    while counters[N_ALIVE] > 1 and start_alive - counters[N_ALIVE] < budget \
            and counters[QUERIES] - start_queries < 8 * budget:
        moved = _restart(ids, chain, counters)
        for k in range(chain.shape[1]):
            t = chain[TOP, k]
            if t < 0 or chain[NEED, k] >= 0 or chain[NN, k] >= 0:
                continue
            chain[NN, k], link[k] = _nearest(t, rows, ids, slots, col_size, log, counters)
            chain[NN_SIZE, k] = ids[SIZE, chain[NN, k]]
            counters[QUERIES] += 1
        for k in range(chain.shape[1]):
            t = chain[TOP, k]
            if t < 0 or chain[NEED, k] >= 0 or chain[NN, k] < 0:
                continue
            moved = True
            b = chain[NN, k]
            u = ids[BELOW, t]
            if link[k] > max_height:
                _settle(k, ids, chain, slots, col_size, counters)
            elif b == u:
                if ids[SLOT, u] < 0:  # its row was evicted: wait for the next pass
                    chain[NEED, k] = u
                    continue
                keep = _merge(t, u, link[k], rows, ids, slots, col_size, log, counters,
                              kept, absorbed, height)
                top = ids[BELOW, u]
                ids[OWNER, t] = ids[OWNER, u] = -1
                ids[BELOW, t] = ids[BELOW, u] = -1
                chain[TOP, k] = top
                chain[NN, k] = -1
                chain[LAST, k] = keep
                if top >= 0 and ids[SLOT, top] < 0:  # evicted while deeper in the chain
                    chain[NEED, k] = top
            elif ids[ALIVE_POS, b] < 0 or ids[SIZE, b] != chain[NN_SIZE, k]:
                chain[NN, k] = -1  # a chain before this one merged or settled it: ask again
            else:
                j = ids[OWNER, b]
                if j == k or 0 <= j < k:
                    counters[DROPS] += 1
                    _drop(k, ids, chain)
                    continue
                if j >= 0:
                    counters[DROPS] += 1
                    _drop(j, ids, chain)
                ids[OWNER, b] = k
                ids[BELOW, b] = t
                chain[TOP, k] = b
                chain[NN, k] = -1
                if ids[SLOT, b] < 0:
                    chain[NEED, k] = b
        if not moved:
            break


@njit(cache=True, error_model="numpy")
def _sync(s, row, slots, log, counters):
    """Replay into cached row ``s`` the merges since it was last current: the column of
    a merged cluster is the sum of its parts' columns."""
    for e in range(slots[SYNCED, s], counters[LOG_LEN]):
        row[log[0, e]] += row[log[1, e]]
    slots[SYNCED, s] = counters[LOG_LEN]


@njit(cache=True, error_model="numpy")
def _nearest(t, rows, ids, slots, col_size, log, counters):
    """Nearest cluster to ``t`` and its linkage. The cluster below ``t`` on its chain
    wins ties (within TIE), then the smallest name."""
    s = ids[SLOT, t]
    row = rows[s]
    _sync(s, row, slots, log, counters)
    slots[PRIORITY, s] = counters[FLOOR] + ids[SIZE, t]
    own = ids[COL, t]
    st = col_size[own]
    best = np.inf
    arg = -1
    for i in range(counters[WIDTH]):
        size = col_size[i]
        if size == 0.0 or i == own:
            continue
        value = row[i] / (st * size)
        if value < best or (value == best and ids[COL_NAME, i] < ids[COL_NAME, arg]):
            best = value
            arg = i
    u = ids[BELOW, t]
    if u >= 0:
        value = row[ids[COL, u]] / (st * col_size[ids[COL, u]])
        if value <= best * (1.0 + TIE):
            best = value
            arg = ids[COL, u]
    return ids[COL_NAME, arg], best


@njit(cache=True, error_model="numpy")
def _merge(t, u, h, rows, ids, slots, col_size, log, counters, kept, absorbed, height):
    """Join clusters ``t`` and ``u`` at height ``h``: the larger keeps its name (ties:
    the smaller name), its row becomes the sum of both rows, and the log tells every
    other cached row to add the two columns. Returns the name."""
    if ids[SIZE, u] > ids[SIZE, t] or (ids[SIZE, u] == ids[SIZE, t] and u < t):
        keep, gone = u, t
    else:
        keep, gone = t, u
    sk, sg = ids[SLOT, keep], ids[SLOT, gone]
    target, source = rows[sk], rows[sg]
    _sync(sk, target, slots, log, counters)
    _sync(sg, source, slots, log, counters)
    for i in range(counters[WIDTH]):
        target[i] += source[i]
    into, away = ids[COL, keep], ids[COL, gone]
    e = counters[LOG_LEN]
    log[0, e] = into
    log[1, e] = away
    counters[LOG_LEN] = e + 1
    slots[SYNCED, sk] = e + 1  # the entry only touches its own column, never read
    slots[PRIORITY, sk] = counters[FLOOR] + ids[SIZE, keep] + ids[SIZE, gone]
    col_size[into] += col_size[away]
    _free(gone, ids, slots, col_size, counters)
    p = ids[HEAD, gone]
    while p >= 0:
        ids[LABEL, p] = keep
        p = ids[NEXT, p]
    ids[NEXT, ids[TAIL, keep]] = ids[HEAD, gone]
    ids[TAIL, keep] = ids[TAIL, gone]
    ids[SIZE, keep] += ids[SIZE, gone]
    ids[SIZE, gone] = 0
    m = counters[MERGES]
    kept[m] = keep
    absorbed[m] = gone
    height[m] = h
    counters[MERGES] = m + 1
    return keep


@njit(cache=True, error_model="numpy")
def _free(c, ids, slots, col_size, counters):
    """Cluster ``c`` is gone (merged away or settled): free its slot, kill its column,
    take it off the alive list."""
    s = ids[SLOT, c]
    if s >= 0:
        slots[SLOT_NAME, s] = -1
        slots[PRIORITY, s] = -2  # reused before never-used slots: its pages are resident
        ids[SLOT, c] = -1
    col = ids[COL, c]
    ids[COL_NAME, col] = -1
    col_size[col] = 0.0
    ids[COL, c] = -1
    i = ids[ALIVE_POS, c]
    last = ids[ALIVE, counters[N_ALIVE] - 1]
    ids[ALIVE, i] = last
    ids[ALIVE_POS, last] = i
    ids[ALIVE_POS, c] = -1
    counters[N_ALIVE] -= 1


@njit(cache=True, error_model="numpy")
def _settle(k, ids, chain, slots, col_size, counters):
    """Chain ``k``'s top is farther than ``max_height`` from everything, and so (the
    chain's linkages only decrease upwards) is every cluster on it: they are final.
    Their points get label n, which counts in no column."""
    n = ids.shape[1] - 1
    c = chain[TOP, k]
    while c >= 0:
        p = ids[HEAD, c]
        while p >= 0:
            ids[LABEL, p] = n
            p = ids[NEXT, p]
        _free(c, ids, slots, col_size, counters)
        ids[OWNER, c] = -1
        below = ids[BELOW, c]
        ids[BELOW, c] = -1
        c = below
    chain[TOP, k] = chain[NN, k] = chain[LAST, k] = -1


@njit(cache=True, error_model="numpy")
def _drop(k, ids, chain):
    """Give chain ``k`` up: its clusters are free again (their rows stay cached)."""
    c = chain[TOP, k]
    while c >= 0:
        ids[OWNER, c] = -1
        below = ids[BELOW, c]
        ids[BELOW, c] = -1
        c = below
    chain[TOP, k] = chain[NN, k] = chain[NEED, k] = -1
    chain[IDLE, k] = 1


@njit(cache=True, error_model="numpy")
def _restart(ids, chain, counters):
    """Start every empty, non-idle chain: at the cluster it merged last if that is free
    (its row is cached, and it is near the chain's recent work), else at the next free
    cluster of the alive list. Returns whether any chain started."""
    started = False
    for k in range(chain.shape[1]):
        if chain[TOP, k] >= 0 or chain[IDLE, k]:
            continue
        s = chain[LAST, k]
        chain[LAST, k] = -1
        if s < 0 or ids[ALIVE_POS, s] < 0 or ids[OWNER, s] >= 0:
            s = -1
            count = counters[N_ALIVE]
            for step in range(count):
                c = ids[ALIVE, (counters[ROTOR] + step) % count]
                if ids[OWNER, c] < 0:
                    s = c
                    counters[ROTOR] = (counters[ROTOR] + step + 1) % count
                    break
        if s < 0:
            chain[IDLE, k] = 1
            continue
        ids[OWNER, s] = k
        ids[BELOW, s] = -1
        chain[TOP, k] = s
        chain[NN, k] = -1
        chain[NEED, k] = s if ids[SLOT, s] < 0 else -1
        started = True
    return started


@njit(cache=True, error_model="numpy")
def _compact(buffer, ids, col_size, slots, log, counters):
    """Pack the live columns to the left, in order, in every cached row (after replaying
    the log into it) and in the column tables. Each entry moves to an offset no larger
    than its own, and rows and columns go in increasing order, so it runs in place."""
    width = counters[WIDTH]
    n_slots = counters[N_SLOTS]
    for s in range(n_slots):
        if slots[SLOT_NAME, s] >= 0:
            _sync(s, buffer[s * width:(s + 1) * width], slots, log, counters)
    new = np.full(width, -1, dtype=np.int64)
    live = 0
    for i in range(width):
        if ids[COL_NAME, i] >= 0:
            new[i] = live
            live += 1
    for s in range(n_slots):
        if slots[SLOT_NAME, s] >= 0:
            for i in range(width):
                if new[i] >= 0:
                    buffer[s * live + new[i]] = buffer[s * width + i]
    for i in range(width):
        if new[i] >= 0:
            name = ids[COL_NAME, i]
            ids[COL_NAME, new[i]] = name
            col_size[new[i]] = col_size[i]
            ids[COL, name] = new[i]
    ids[COL_NAME, live:width] = -1
    col_size[live:width] = 0.0
    counters[WIDTH] = live
    counters[LOG_LEN] = 0
    slots[SYNCED] = 0
