"""Compiled kernel of the graph HAC (`alharness.ops.hac`): the pair table, the heap, merges.

Everything here is numba (``cache=True``), sequential, and uses flat arrays only — no
per-pair Python objects — so memory is O(n·d + pairs). Names:

* a *cluster* is named by one of its points (its representative). Its record in ``cl``
  holds its ``size``; ``within`` = Σ‖x − μ‖² over its points (kept by Ward's update
  formula); the ``slot`` of its centroid in ``cent`` (−1: a singleton, whose centroid is
  its point); where its members start in ``members`` (one contiguous run per cluster);
  its heap position and smallest pair (``best``);
* a *pair* p joins two adjacent clusters ``u``, ``v`` (dead: u = −1); its record in ``pr``
  holds the sum ``s``, sum of squares ``q`` and count ``m`` of the point-pair distances
  known between them, its ``key`` and, once sampled, the variance ``var`` of its
  distances (−1 until then);
* each cluster lists its pairs in ``pool[start : start + length]``.

A record per pair and per cluster keeps what one visit of a pair or a neighbour reads in
one or two cache lines: the kernel is bound by memory latency, not arithmetic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PAIR = np.dtype([("s", np.float64), ("key", np.float64), ("u", np.int32), ("v", np.int32),
                 ("q", np.float32), ("m", np.float32), ("var", np.float32)], align=True)
CLUSTER = np.dtype([("size", np.int64), ("within", np.float64), ("mstart", np.int64),
                    ("slot", np.int32), ("pos", np.int32), ("best", np.int32),
                    ("mark", np.int32), ("origin", np.int8)], align=True)
# Counters in the kernel's ``stats`` array.
MERGES, COMPLETIONS, SAMPLED, DISTANCES, POP_DISTANCES = 0, 1, 2, 3, 4
N_STATS = 5


@njit(cache=True)
def _listed(ids, dists, i, j):
    """Whether row ``i`` lists ``j`` (with a finite distance)."""
    s = 0
    while s < ids.shape[1] and not (ids[i, s] == j and np.isfinite(dists[i, s])):
        s += 1
    return s < ids.shape[1]


@njit(cache=True)
def _keeps(ids, dists, i, t):
    """Whether entry t of row i is the one copy kept of edge i–ids[i, t]: not a gap, not
    repeated earlier in the row, and not also listed by row j < i (which keeps it)."""
    j = ids[i, t]
    if j < 0 or j == i or not np.isfinite(dists[i, t]):
        return False
    for s in range(t):
        if ids[i, s] == j:
            return False
    return not (j < i and _listed(ids, dists, j, i))


@njit(cache=True)
def build_pairs(ids, dists):
    """The graph's undirected edges as pair records, each once (u < v): edge i–j exists if
    j is among i's neighbours or i among j's; −1 ids and non-finite distances are gaps.
    The weight is the one row min(i, j) lists, else the other row's."""
    n, k = ids.shape
    count = 0
    for i in range(n):
        for t in range(k):
            count += _keeps(ids, dists, i, t)
    pr = np.empty(count, PAIR)
    pu, pv, ps, pq, pm, pk, pvar = (pr["u"], pr["v"], pr["s"], pr["q"], pr["m"], pr["key"],
                                    pr["var"])
    e = 0
    for i in range(n):
        for t in range(k):
            if _keeps(ids, dists, i, t):
                j = ids[i, t]
                w = float(dists[i, t])
                pu[e], pv[e], ps[e], pq[e], pm[e], pk[e], pvar[e] = (
                    min(i, j), max(i, j), w, w * w, 1.0, w, -1.0)
                e += 1
    return pr


# ---------------------------------------------------------------- indexed heap over clusters

@njit(cache=True, inline="always")
def _before(k1, i1, k2, i2):
    return k1 < k2 or (k1 == k2 and i1 < i2)


@njit(cache=True)
def _sift_up(hk, hi, pos, t):
    key, cid = hk[t], hi[t]
    while t > 0:
        parent = (t - 1) >> 1
        if not _before(key, cid, hk[parent], hi[parent]):
            break
        hk[t], hi[t] = hk[parent], hi[parent]
        pos[hi[t]] = t
        t = parent
    hk[t], hi[t] = key, cid
    pos[cid] = t


@njit(cache=True)
def _sift_down(hk, hi, pos, t, size):
    key, cid = hk[t], hi[t]
    while True:
        child = 2 * t + 1
        if child >= size:
            break
        if child + 1 < size and _before(hk[child + 1], hi[child + 1], hk[child], hi[child]):
            child += 1
        if not _before(hk[child], hi[child], key, cid):
            break
        hk[t], hi[t] = hk[child], hi[child]
        pos[hi[t]] = t
        t = child
    hk[t], hi[t] = key, cid
    pos[cid] = t


@njit(cache=True)
def _heap_set(hk, hi, pos, state, cid, key):
    """Insert cluster ``cid`` with ``key`` or move it there; ``state[0]`` is the heap size."""
    t = pos[cid]
    if t < 0:
        t = state[0]
        state[0] += 1
        hk[t], hi[t] = key, cid
        _sift_up(hk, hi, pos, t)
    elif key < hk[t]:
        hk[t] = key
        _sift_up(hk, hi, pos, t)
    else:
        hk[t] = key
        _sift_down(hk, hi, pos, t, state[0])


@njit(cache=True)
def _heap_remove(hk, hi, pos, state, cid):
    t = pos[cid]
    if t < 0:
        return
    pos[cid] = -1
    state[0] -= 1
    last = state[0]
    if t == last:
        return
    moved = hi[last]
    hk[t], hi[t] = hk[last], moved
    pos[moved] = t
    _sift_up(hk, hi, pos, t)
    _sift_down(hk, hi, pos, pos[moved], state[0])


# ---------------------------------------------------------------- distances between clusters

@njit(cache=True, fastmath=True)
def _block(x, ma, mb):
    """Σd and Σd² over the point pairs of rows ``ma`` × ``mb`` of ``x``, each distance from
    the difference (so duplicates are exactly 0), accumulated in ``x``'s precision."""
    s = 0.0
    q = 0.0
    d = x.shape[1]
    for a in range(ma.shape[0]):
        ia = ma[a]
        for b in range(mb.shape[0]):
            ib = mb[b]
            acc = x[ia, 0] - x[ia, 0]
            for j in range(d):
                diff = x[ia, j] - x[ib, j]
                acc += diff * diff
            sq = np.float64(acc)
            s += np.sqrt(sq)
            q += sq
    return s, q


@njit(cache=True)
def _draw(members, count, out):
    """``count`` members drawn uniformly (with replacement) into ``out[:count]``; all of
    them, in order, if there are no more than ``count``."""
    if members.shape[0] <= count:
        out[:members.shape[0]] = members
        return out[:members.shape[0]]
    for t in range(count):
        out[t] = members[np.random.randint(members.shape[0])]
    return out[:count]


@njit(cache=True, inline="always")
def _worth_completing(known_a, block_a, known_c, block_c, eager, upkeep, near):
    """Whether a merge completes the two parts a × o and c × o of its pair with o: when
    the distances to compute are at most ``eager``, or (``near`` the heap's top) at most
    ``upkeep`` × the part that is already complete, so a completed pair stays complete
    while its clusters grow."""
    cost = (block_a if known_a < block_a else 0.0) + (block_c if known_c < block_c else 0.0)
    if cost == 0.0:
        return False
    done = (block_a if known_a >= block_a else 0.0) + (block_c if known_c >= block_c else 0.0)
    return cost <= eager or (near and cost <= upkeep * done)


# ---------------------------------------------------------------- keys

@njit(cache=True)
def _centroid_gap(x, cent, slot, a, b):
    """‖μ_a − μ_b‖²."""
    ra = x[a] if slot[a] < 0 else cent[slot[a]]
    rb = x[b] if slot[b] < 0 else cent[slot[b]]
    acc = 0.0
    for j in range(ra.shape[0]):
        diff = np.float64(ra[j]) - np.float64(rb[j])
        acc += diff * diff
    return acc


@njit(cache=True)
def _key(x, cent, slot, size, within, pu, pv, ps, pq, pm, pvar, p, fill):
    """The pair's average linkage: exact when every point pair is known; else the known sum
    plus the unknown pairs at an estimated mean. Their mean *square* is exact (the mean
    square over all pairs is ‖μ_A − μ_B‖² + s²_A + s²_B, from the clusters' centroids and
    spreads); their mean is √(mean square − variance) with the variance sampled (``var``),
    or ``fill`` × √(mean square) before sampling (slightly low: module doc)."""
    a, b = pu[p], pv[p]
    total = float(size[a]) * float(size[b])
    unknown = total - pm[p]
    if unknown <= 0.0:
        return ps[p] / total
    mean_sq = (_centroid_gap(x, cent, slot, a, b) + within[a] / size[a]
               + within[b] / size[b])
    rest = max((total * mean_sq - pq[p]) / unknown, 0.0)
    guess = np.sqrt(max(rest - pvar[p], 0.0)) if pvar[p] >= 0.0 else fill * np.sqrt(rest)
    return (ps[p] + unknown * guess) / total


@njit(cache=True)
def _rescan(c, pool, start, length, pu, pv, pk, best, hk, hi, pos, state):
    """Drop ``c``'s dead pairs and put its smallest pair (ties: smaller other id) in the heap."""
    s0 = start[c]
    kept = 0
    bp = -1
    bk = np.inf
    bo = -1
    for t in range(length[c]):
        p = pool[s0 + t]
        if pu[p] < 0:
            continue
        pool[s0 + kept] = p
        kept += 1
        o = pv[p] if pu[p] == c else pu[p]
        if bp < 0 or _before(pk[p], o, bk, bo):
            bp, bk, bo = p, pk[p], o
    length[c] = kept
    best[c] = bp
    if bp < 0:
        _heap_remove(hk, hi, pos, state, c)
    else:
        _heap_set(hk, hi, pos, state, c, bk)


@njit(cache=True)
def _offer(e, p, key, best, hk, hi, pos, state):
    """Pair ``p`` of cluster ``e`` has a new ``key``: if it is below ``e``'s heap entry it
    becomes ``e``'s best. A key that went up is left alone: the entry stays a lower bound
    of ``e``'s keys, and the main loop re-scans ``e`` if it reaches the top stale."""
    if pos[e] < 0 or key < hk[pos[e]]:
        best[e] = p
        _heap_set(hk, hi, pos, state, e, key)


# ---------------------------------------------------------------- growable segments

@njit(cache=True)
def _grow_rows(a, rows):
    out = np.empty((rows,) + a.shape[1:], a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def _compact(pool, start, length, cap):
    """Slide every live segment (cap > 0) of ``pool`` down over the garbage of moved ones."""
    live = np.flatnonzero(cap > 0)
    order = live[np.argsort(start[live])]
    top = 0
    for c in order:
        s0 = start[c]
        for t in range(length[c]):
            pool[top + t] = pool[s0 + t]
        start[c] = top
        cap[c] = length[c]
        top += length[c]
    return top


@njit(cache=True)
def _make_room(pool, start, length, cap, c, need, used):
    """Let segment ``c`` of ``pool`` hold ``need`` entries: move it to the free end with
    room to grow (compacting, or doubling, the pool when full). Returns (pool, used)."""
    if need <= cap[c]:
        return pool, used
    newcap = need + need // 2 + 4
    if used + newcap > pool.shape[0]:
        used = _compact(pool, start, length, cap)
        if used + newcap > pool.shape[0]:
            pool = _grow_rows(pool, 2 * (used + newcap))
    s0 = start[c]
    for t in range(length[c]):
        pool[used + t] = pool[s0 + t]
    start[c] = used
    cap[c] = newcap
    return pool, used + newcap


# ---------------------------------------------------------------- the agglomeration

@njit(cache=True)
def agglomerate(x, pr, max_height, target_merges, fill, eager, upkeep, reach, exact_max,
                sample_max, seed):
    """Sequential average-linkage merges of adjacent clusters (module doc of
    `alharness.ops.hac`) on the pair records ``pr`` (from `build_pairs`; consumed).
    Returns ``(kept, absorbed, height, stats)``."""
    np.random.seed(seed)
    n, d = x.shape
    pu, pv, ps, pq, pm, pk, pvar = (pr["u"], pr["v"], pr["s"], pr["q"], pr["m"], pr["key"],
                                    pr["var"])
    stats = np.zeros(N_STATS, np.int64)
    cl = np.zeros(n, CLUSTER)
    size, within, mstart, slot, pos, best, mark, origin = (
        cl["size"], cl["within"], cl["mstart"], cl["slot"], cl["pos"], cl["best"],
        cl["mark"], cl["origin"])
    size[:] = 1
    slot[:] = -1
    pos[:] = -1
    best[:] = -1
    mark[:] = -1
    cent = np.empty((max(16, n // 64), d), x.dtype)  # centroids of non-singletons
    free_slots = np.empty(16, np.int32)
    n_free = n_slots = 0
    # Members: one contiguous run per cluster in `members` (moved when it outgrows it).
    members = np.empty(n + n // 2 + 1024, np.int32)
    members[:n] = np.arange(n)
    mstart[:] = np.arange(n)
    mcap = np.ones(n, np.int64)
    mused = n
    side = int(np.sqrt(sample_max))
    draw_a = np.empty(sample_max, np.int32)
    draw_b = np.empty(sample_max, np.int32)
    # Pair lists: one run per cluster in `pool`, likewise.
    length = np.zeros(n, np.int64)
    for p in range(pr.shape[0]):
        length[pu[p]] += 1
        length[pv[p]] += 1
    start = np.zeros(n, np.int64)
    for c in range(1, n):
        start[c] = start[c - 1] + length[c - 1]
    cap = length.copy()
    used = 2 * pr.shape[0]
    pool = np.empty(used + used // 2 + 1024, np.int32)
    fill_at = start.copy()
    for p in range(pr.shape[0]):
        pool[fill_at[pu[p]]] = p
        fill_at[pu[p]] += 1
        pool[fill_at[pv[p]]] = p
        fill_at[pv[p]] += 1
    # The heap: every cluster with a pair, keyed by (a lower bound of) its smallest pair.
    hk = np.empty(n)
    hi = np.empty(n, np.int32)
    state = np.zeros(1, np.int64)
    for c in range(n):
        _rescan(c, pool, start, length, pu, pv, pk, best, hk, hi, pos, state)
    kept = np.empty(max(n - 1, 0), np.int32)
    absorbed = np.empty(max(n - 1, 0), np.int32)
    height = np.empty(max(n - 1, 0))
    while state[0] > 0 and hk[0] <= max_height:
        y = hi[0]
        p = best[y]
        if p < 0 or pu[p] < 0 or (pu[p] != y and pv[p] != y) or pk[p] != hk[0]:
            _rescan(y, pool, start, length, pu, pv, pk, best, hk, hi, pos, state)  # stale
            continue
        z = pv[p] if pu[p] == y else pu[p]
        total = float(size[y]) * float(size[z])
        if pm[p] < total and pvar[p] < 0.0:
            # Unknown pairs and no sample yet: compute them all (small blocks) or sample
            # the variance (large ones), re-key, re-queue.
            my = members[mstart[y]:mstart[y] + size[y]]
            mz = members[mstart[z]:mstart[z] + size[z]]
            if total <= exact_max:
                ps[p], pq[p] = _block(x, my, mz)
                pm[p] = total
                stats[COMPLETIONS] += 1
                count = size[y] * size[z]
            else:
                ny = min(size[y], max(side, sample_max // size[z]))
                sy = _draw(my, ny, draw_a)
                sz = _draw(mz, min(size[z], sample_max // sy.shape[0]), draw_b)
                bs, bq = _block(x, sy, sz)
                count = sy.shape[0] * sz.shape[0]
                pvar[p] = max(bq / count - (bs / count) ** 2, 0.0)
                stats[SAMPLED] += 1
            stats[DISTANCES] += count
            stats[POP_DISTANCES] += count
            pk[p] = _key(x, cent, slot, size, within, pu, pv, ps, pq, pm, pvar, p, fill)
            _offer(y, p, pk[p], best, hk, hi, pos, state)
            _offer(z, p, pk[p], best, hk, hi, pos, state)
            continue
        h = pk[p]
        # Keep the cluster with the longer pair list (fewer pairs to rename).
        a, c = (y, z) if length[y] >= length[z] else (z, y)
        na, nc = size[a], size[c]
        kept[stats[MERGES]], absorbed[stats[MERGES]], height[stats[MERGES]] = a, c, h
        stats[MERGES] += 1
        # 1. a's pairs: drop the merged pair, mark a's neighbours.
        s0 = start[a]
        la = 0
        for t in range(length[a]):
            q = pool[s0 + t]
            if pu[q] < 0:
                continue
            o = pv[q] if pu[q] == a else pu[q]
            if o == c:
                pu[q] = -1
                continue
            pool[s0 + la] = q
            la += 1
            mark[o] = q
            origin[o] = 1
        length[a] = la
        pool, used = _make_room(pool, start, length, cap, a, la + length[c], used)
        s0 = start[a]
        ma = members[mstart[a]:mstart[a] + na]
        mc = members[mstart[c]:mstart[c] + nc]
        # 2. fold c's pairs into a's, completing the parts that are cheap to complete.
        sc = start[c]
        for t in range(length[c]):
            q = pool[sc + t]
            if pu[q] < 0:
                continue
            o = pv[q] if pu[q] == c else pu[q]
            r = mark[o]
            known_a = pm[r] if r >= 0 else 0.0
            block_a, block_c = float(na) * float(size[o]), float(nc) * float(size[o])
            near = min(pk[q], pk[r] if r >= 0 else np.inf) <= reach * h
            if block_a + block_c <= exact_max and _worth_completing(
                    known_a, block_a, pm[q], block_c, eager, upkeep, near):
                mo = members[mstart[o]:mstart[o] + size[o]]
                if pm[q] < block_c:
                    ps[q], pq[q] = _block(x, mc, mo)
                    pm[q] = block_c
                    stats[DISTANCES] += nc * size[o]
                if known_a < block_a:
                    bs, bq = _block(x, ma, mo)
                    stats[DISTANCES] += na * size[o]
                    if r >= 0:
                        ps[r], pq[r], pm[r] = bs, bq, block_a
                    else:
                        ps[q] += bs
                        pq[q] += bq
                        pm[q] += block_a
            if r >= 0:
                ps[r] += ps[q]
                pq[r] += pq[q]
                pm[r] += pm[q]
                pu[q] = -1
                origin[o] = 3
            else:
                if pu[q] == c:
                    pu[q] = a
                else:
                    pv[q] = a
                pool[s0 + length[a]] = q
                length[a] += 1
                mark[o] = q
                origin[o] = 2
        # 3. the merged cluster: spread (Ward), centroid, members.
        within[a] += within[c] + na * nc / (na + nc) * _centroid_gap(x, cent, slot, a, c)
        if slot[a] < 0:
            if n_free > 0:
                n_free -= 1
                slot[a] = free_slots[n_free]
            else:
                if n_slots == cent.shape[0]:
                    cent = _grow_rows(cent, 2 * n_slots)
                slot[a] = n_slots
                n_slots += 1
            ra = x[a].copy()
        else:
            ra = cent[slot[a]].copy()
        rc = x[c] if slot[c] < 0 else cent[slot[c]]
        wa, wc = na / (na + nc), nc / (na + nc)
        for j in range(d):
            cent[slot[a], j] = wa * ra[j] + wc * rc[j]
        if slot[c] >= 0:
            if n_free == free_slots.shape[0]:
                free_slots = _grow_rows(free_slots, 2 * n_free)
            free_slots[n_free] = slot[c]
            n_free += 1
            slot[c] = -1
        members, mused = _make_room(members, mstart, size, mcap, a, na + nc, mused)
        members[mstart[a] + na:mstart[a] + na + nc] = members[mstart[c]:mstart[c] + nc]
        size[a] = na + nc
        mcap[c] = 0
        ma = members[mstart[a]:mstart[a] + na]
        mc = members[mstart[a] + na:mstart[a] + na + nc]
        # 4. one pass over the merged list: the c × o part of a's own pairs where cheap,
        #    new keys (sampled variances are stale now), a neighbour whose key dropped
        #    below its heap entry takes it (`_offer`), and a's own smallest pair.
        bp, bk, bo = -1, np.inf, -1
        for t in range(length[a]):
            q = pool[s0 + t]
            o = pv[q] if pu[q] == a else pu[q]
            if origin[o] == 1:  # a's alone: c × o is unknown
                block_a, block_c = float(na) * float(size[o]), float(nc) * float(size[o])
                if block_a + block_c <= exact_max and _worth_completing(
                        pm[q], block_a, 0.0, block_c, eager, upkeep, pk[q] <= reach * h):
                    mo = members[mstart[o]:mstart[o] + size[o]]
                    bs, bq = _block(x, mc, mo)
                    stats[DISTANCES] += nc * size[o]
                    if pm[q] < block_a:
                        ps[q], pq[q] = _block(x, ma, mo)
                        stats[DISTANCES] += na * size[o]
                        pm[q] = block_a
                    ps[q] += bs
                    pq[q] += bq
                    pm[q] += block_c
            mark[o] = -1
            origin[o] = 0
            pvar[q] = -1.0
            key = _key(x, cent, slot, size, within, pu, pv, ps, pq, pm, pvar, q, fill)
            pk[q] = key
            _offer(o, q, key, best, hk, hi, pos, state)
            if bp < 0 or _before(key, o, bk, bo):
                bp, bk, bo = q, key, o
        length[c] = 0
        cap[c] = 0
        best[c] = -1
        _heap_remove(hk, hi, pos, state, c)
        best[a] = bp
        if bp < 0:
            _heap_remove(hk, hi, pos, state, a)
        else:
            _heap_set(hk, hi, pos, state, a, bk)
        if stats[MERGES] == target_merges:
            max_height = min(max_height, np.partition(height[:stats[MERGES]],
                                                      target_merges - 1)[target_merges - 1])
    m_ = stats[MERGES]
    return kept[:m_].copy(), absorbed[:m_].copy(), height[:m_].copy(), stats
