"""The shared kernels behind CoreSet, BADGE and ALFA-Mix's seeding: exact against brute
force or the exact law, memory-bounded."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import numpy as np
import pytest

from alharness.ops import equal_rows as equal_rows_module
from alharness.ops import kcenter as kcenter_module
from alharness.ops import kmeans_pp as kmeans_pp_module
from alharness.ops.equal_rows import equal_row_groups
from alharness.ops.kcenter import kcenter_greedy
from alharness.ops.kmeans_pp import greedy_kmeans_pp, kmeans_pp, local_trials
from alharness.ops.mindist import FactorisedPoints, NearestCentre, min_sq_dists, sq_dists


def brute_kcenter(x: np.ndarray, k: int, centres: np.ndarray | None, first: int = 0):
    """Textbook greedy k-center in float64 with full distance matrices."""
    x = x.astype(np.float64)
    picks = []
    if centres is None or not len(centres):
        d, radii = ((x - x[first]) ** 2).sum(1), [np.inf]
        picks.append(first)
    else:
        d = ((x[:, None] - centres.astype(np.float64)[None]) ** 2).sum(-1).min(1)
        radii = []
    radii.append(np.sqrt(d.max()))
    while len(picks) < k:
        i = int(np.argmax(d))
        picks.append(i)
        d = np.minimum(d, ((x - x[i]) ** 2).sum(1))
        radii.append(np.sqrt(d.max()))
    return np.array(picks), np.array(radii)


@pytest.mark.parametrize("active", [1024, 4, 1])
@pytest.mark.parametrize("seed", range(4))
def test_kcenter_matches_brute_force_and_radius_never_grows(seed, active, monkeypatch):
    monkeypatch.setattr(kcenter_module, "ACTIVE", active)  # small: many phases and regrowths
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(100, 400)), int(rng.integers(2, 24))
    x = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + 4).astype(np.float32)
    centres = rng.normal(size=(int(rng.integers(1, 40)), d)).astype(np.float32)
    k = int(rng.integers(1, n // 2))
    got = kcenter_greedy(x, k, centres)
    picks, radii = brute_kcenter(x, k, centres)
    np.testing.assert_array_equal(got.picks, picks)
    np.testing.assert_allclose(got.radii, radii, rtol=1e-4)
    assert np.all(np.diff(got.radii) <= 0)
    assert got.radius == pytest.approx(radii[-1], rel=1e-4)


def test_kcenter_without_centres_starts_from_the_rng_and_matches_brute_force():
    x = np.random.default_rng(7).normal(size=(300, 5)).astype(np.float32)
    got = kcenter_greedy(x, 40, rng=np.random.default_rng(3))
    first = int(np.random.default_rng(3).integers(300))
    picks, radii = brute_kcenter(x, 40, None, first)
    np.testing.assert_array_equal(got.picks, picks)
    assert got.radii[0] == np.inf and np.all(np.diff(got.radii[1:]) <= 0)
    np.testing.assert_allclose(got.radii[1:], radii[1:], rtol=1e-4)


def test_kcenter_with_duplicates_takes_every_point_once_and_ends_at_radius_zero():
    base = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    x = np.concatenate([base, base, base])
    got = kcenter_greedy(x, len(x), base[:2])
    assert sorted(got.picks.tolist()) == list(range(len(x)))
    assert got.radius == 0.0 and np.all(np.diff(got.radii) <= 0)


def test_factorised_distances_equal_dense_ones():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 5)), rng.normal(size=(40, 7))
    dense = (a[:, :, None] * b[:, None, :]).reshape(40, -1)
    want = ((dense[:, None] - dense[None]) ** 2).sum(-1)
    points = FactorisedPoints(a, b)
    np.testing.assert_allclose(sq_dists(points, points), want, rtol=1e-4, atol=1e-3)
    centres = points.take(np.arange(0, 40, 3))
    blocked = min_sq_dists(points, centres, block_elements=2 * 40)  # two centres per block
    np.testing.assert_allclose(blocked, want[:, ::3].min(1), rtol=1e-4, atol=1e-3)
    lazy = NearestCentre(points, capacity=1)
    lazy.add(5)
    np.testing.assert_allclose(lazy.to_last(points, points.sq_norms()), want[:, 5], rtol=1e-4,
                               atol=1e-3)
    dense_points = FactorisedPoints.dense(dense)  # the dense case is scale = 1
    np.testing.assert_allclose(sq_dists(dense_points, dense_points), want, rtol=1e-4, atol=1e-3)


def test_kmeans_pp_starts_at_the_largest_norm_is_seeded_and_never_repeats():
    rng = np.random.default_rng(1)
    points = FactorisedPoints(rng.normal(size=(3000, 4)), rng.normal(size=(3000, 16)))
    picks = kmeans_pp(points, 400, np.random.default_rng(5))
    assert picks[0] == np.argmax(points.sq_norms())
    assert len(np.unique(picks)) == 400
    np.testing.assert_array_equal(picks, kmeans_pp(points, 400, np.random.default_rng(5)))
    assert not np.array_equal(picks, kmeans_pp(points, 400, np.random.default_rng(6)))


def test_kmeans_pp_fills_with_distinct_points_once_everything_is_covered():
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct points, 4 copies each
    picks = kmeans_pp(x, 12, np.random.default_rng(0))
    assert sorted(picks.tolist()) == list(range(12))
    assert len({tuple(x[i]) for i in picks[:3]}) == 3  # D² sampling covers all 3 first


@pytest.mark.parametrize("proposals", [1024, 2])
def test_kmeans_pp_draws_proportional_to_squared_distance(proposals, monkeypatch):
    """Empirical law of the 2nd and 3rd centres vs the exact D² law (a D-weighted sampler is
    0.15 away in total variation; sampling noise here is about 0.04)."""
    monkeypatch.setattr(kmeans_pp_module, "PROPOSALS", proposals)  # 2: stale-bound rejections
    x = np.array([[6, 0], [0, 1], [0, -1], [-2, 0], [1, 3], [2, -3]], dtype=np.float32)

    def d2(centres):
        return ((x[:, None] - x[centres][None]) ** 2).sum(-1).min(1)

    exact = {}
    p2 = d2([0]) / d2([0]).sum()
    for j in np.flatnonzero(p2):
        p3 = d2([0, j]) / d2([0, j]).sum()
        exact.update({(j, m): p2[j] * p3[m] for m in np.flatnonzero(p3)})
    draws = 2000
    seen = Counter(tuple(kmeans_pp(x, 3, np.random.default_rng(s))[1:]) for s in range(draws))
    tv = sum(abs(seen[key] / draws - exact.get(key, 0.0)) for key in set(seen) | set(exact)) / 2
    assert tv < 0.08


def test_kernels_never_build_pool_by_centres_matrices():
    """|U| × |L| float32 here would be 320 MB (CoreSet), the dense (n, C·d) gradient
    embedding 256 MB (BADGE); the kernels stay within their fixed-size blocks."""
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(20_000, 8)).astype(np.float32)
    labelled = rng.normal(size=(4_000, 8)).astype(np.float32)
    grads = FactorisedPoints(rng.normal(size=(20_000, 100)), rng.normal(size=(20_000, 32)))
    tracemalloc.start()
    try:
        kcenter_greedy(pool, 50, labelled)
        _, peak_kcenter = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        kmeans_pp(grads, 50, np.random.default_rng(0))
        _, peak_kmeans = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_kcenter < 150e6 and peak_kmeans < 80e6, (peak_kcenter, peak_kmeans)


# --- greedy k-means++ (ALFA-Mix's seeding) and exact copies (CoreSet) ------------------

def greedy_law(x: np.ndarray, trials: int) -> dict[tuple[int, int], float]:
    """Exact law of (2nd, 3rd) centre of scikit-learn's greedy k-means++ from a uniform
    first centre: each step, ``trials`` i.i.d. draws ∝ D², the one lowering Σ D² most wins
    (ties: the earlier draw). Enumerates every tuple of draws."""
    from itertools import product

    d = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)

    def step(d2):
        law = np.zeros(len(x))
        p = d2 / d2.sum()
        for draw in product(np.flatnonzero(p), repeat=trials):
            gains = [np.maximum(d2 - d[c], 0).sum() for c in draw]
            law[draw[int(np.argmax(gains))]] += np.prod(p[list(draw)])
        return law

    out: dict[tuple[int, int], float] = {}
    for first in range(len(x)):
        second = step(d[first])
        for s in np.flatnonzero(second):
            third = step(np.minimum(d[first], d[s]))
            for t in np.flatnonzero(third):
                key = (int(s), int(t))
                out[key] = out.get(key, 0.0) + second[s] * third[t] / len(x)
    return out


@pytest.mark.parametrize("trials", [1, 3])
def test_greedy_kmeans_pp_follows_the_greedy_law(trials):
    """Proposals are drawn per round ∝ the round's D² and accepted with D²_now/D²_round;
    here one round serves all three steps, so the rejection is what keeps the law exact.
    Measured total variation: 0.05 and 0.04; accepting every proposal gives 0.14 and 0.15,
    keeping the first draw instead of the best 0.35 (trials 3)."""
    x = np.array([[6, 0], [0, 1.3], [0.2, -1], [-2, 0.4], [1, 3], [2, -3.3]], dtype=np.float32)
    exact = greedy_law(x, trials)
    draws = 3000
    seen = Counter(tuple(greedy_kmeans_pp(x, 3, np.random.default_rng(s), trials)[1:].tolist())
                   for s in range(draws))
    tv = sum(abs(seen[key] / draws - exact.get(key, 0.0)) for key in set(seen) | set(exact)) / 2
    assert tv < 0.08


def test_greedy_kmeans_pp_trials_and_distinct_fill():
    assert local_trials(2000) == 2 + int(np.log(2000)) == 9  # scikit-learn's n_local_trials
    assert local_trials(2000, 6) == 6 and local_trials(10, 6) == 4
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct points, 4 copies each
    picks = greedy_kmeans_pp(x, 12, np.random.default_rng(0))
    assert sorted(picks.tolist()) == list(range(12))
    assert len({tuple(x[i]) for i in picks[:3]}) == 3


def test_equal_row_groups_is_exact_equality_across_arrays(monkeypatch):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 5)).astype(np.float32)
    a[10:15] = a[:5]
    a[20] = -0.0
    b = np.concatenate([a[:3], rng.normal(size=(2, 5)), np.zeros((1, 5))]).astype(np.float32)
    b[1, 2] = np.nextafter(b[1, 2], np.float32(9))  # one ulp away: not a copy

    def check(ga, gb):
        rows = np.concatenate([a, b])
        groups = np.concatenate([ga, gb])
        same = (rows[:, None] == rows[None]).all(-1)
        np.testing.assert_array_equal(groups[:, None] == groups[None], same)

    check(*equal_row_groups(a, b))
    assert equal_row_groups(a, b)[1][5] == equal_row_groups(a, b)[0][20]  # −0.0 = 0.0
    # Colliding hashes (forced here) fall back to an exact sort of the rows.
    monkeypatch.setattr(equal_rows_module, "_row_keys", lambda rows: np.zeros(len(rows), np.uint64))
    check(*equal_row_groups(a, b))


def test_kcenter_on_exact_copies_ends_at_radius_exactly_zero_in_pool_order():
    """Embeddings of norm ≈ 45: float32 puts copies 0.016–0.031 apart, so only the exact
    copy test makes the radius 0 and hands the rest over in pool order."""
    rng = np.random.default_rng(0)
    base = (rng.normal(size=(50, 512)) * 2 + 1).astype(np.float32)
    x = np.concatenate([base, base, base[:20]])  # points 50.. are copies of 0..
    got = kcenter_greedy(x, 60, base[:5])  # pool points 0–4 (and 50–54) copy a centre
    distinct = got.picks[:45]
    assert sorted(x[distinct].tolist()) == sorted(base[5:].tolist())  # each once
    assert np.all(got.radii[:45] > 1.0) and np.all(got.radii[45:] == 0.0)
    taken = np.zeros(len(x), dtype=bool)
    taken[distinct] = True
    np.testing.assert_array_equal(got.picks[45:], np.flatnonzero(~taken)[:15])
