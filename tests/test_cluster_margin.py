"""Cluster-Margin: its limits (km = 1 is Margin; one cluster or singletons give a uniform
random subset of the candidates), round-robin fairness, diversity on near-duplicates,
clusters computed once and kept across a resume, and runs through ``run.py``."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from alharness.errors import ConfigError, SelectionError
from alharness.loop.run_folder import LoopState, RunFolder
from alharness.loop.runner import run_experiment
from alharness.ops.hac import average_linkage, neighbour_graph
from alharness.ops.hac_exact import exact_average_linkage
from alharness.ops.knn import diameter_bound
from alharness.strategies import SelectionContext, build_strategy, validate_picks
from alharness.strategies.cluster_margin import CACHE_KEY, ClusterMargin, cuda_device, round_robin
from alharness.strategies.outputs import ArrayOutputs
from tests.conftest import ROOT, run_until_killed


def two_class_probs(margin: np.ndarray) -> np.ndarray:
    """Binary probabilities whose top-1 − top-2 gap is ``margin``."""
    p = 0.5 + margin / 2
    return np.stack([p, 1 - p], axis=1).astype(np.float32)


def context(probs: np.ndarray, embeddings: np.ndarray | None = None, labelled=(), seed: int = 0,
            task: str = "multiclass", cache: dict | None = None) -> SelectionContext:
    n = len(probs)
    labelled = np.asarray(labelled, dtype=np.int64)
    return SelectionContext(
        labelled=labelled, unlabelled=np.setdiff1d(np.arange(n), labelled),
        outputs=ArrayOutputs(probs=probs, embeddings=embeddings),
        needs=frozenset({"probs", "embeddings"}), rng=np.random.default_rng(seed),
        cache={} if cache is None else cache, task=task, pool_size=n)


def run(ctx: SelectionContext, budget: int, **params) -> np.ndarray:
    strategy = build_strategy({"name": "cluster_margin", **params})
    strategy.prepare(ctx)
    return validate_picks(strategy.select(ctx, budget), ctx, budget, "cluster_margin")


def with_clusters(labels: np.ndarray) -> dict:
    """A cache as `ClusterMargin.prepare` leaves it, with given cluster ids."""
    return {CACHE_KEY: {"labels": np.asarray(labels), "epsilon": 1.0, "cycle": 0}}


@pytest.fixture(scope="module")
def pool():
    """200 points in 2-d, distinct margins, the 40 lowest at positions 0…39."""
    rng = np.random.default_rng(0)
    margin = np.concatenate([np.linspace(0.0, 0.2, 40), np.linspace(0.3, 1.0, 160)])
    order = rng.permutation(200)
    margin[order] = margin.copy()  # shuffle positions, remember where the candidates went
    return two_class_probs(margin), rng.normal(size=(200, 2)), np.sort(order[:40])


@pytest.mark.parametrize("task,aggregate", [("multiclass", "min"), ("multilabel", "min"),
                                            ("multilabel", "mean")])
def test_km_one_is_exactly_margins_batch(task, aggregate):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5), size=300).astype(np.float32)
    probs[::7] = probs[3]  # ties, broken by the shared random stream
    emb = rng.normal(size=(300, 4))
    for seed in range(5):
        margin = build_strategy({"name": "margin", "multilabel_aggregate": aggregate}).select(
            context(probs, emb, labelled=range(20), seed=seed, task=task), 25)
        ours = run(context(probs, emb, labelled=range(20), seed=seed, task=task), 25, km=1,
                   multilabel_aggregate=aggregate, knn_k=5)
        np.testing.assert_array_equal(ours, margin)


@pytest.mark.parametrize("clustering", [{"epsilon": 0.0}, {"epsilon": 1e9},
                                        {"target_cluster_size": 1}, {"target_cluster_size": 200}])
def test_singletons_or_one_cluster_pick_a_uniform_random_subset_of_the_candidates(pool,
                                                                                    clustering):
    probs, emb, candidates = pool
    counts, together = np.zeros(200), np.zeros((40, 40))
    seeds = 300
    ctx = context(probs, emb)
    labels = None
    for seed in range(seeds):
        ctx = context(probs, emb, seed=seed, cache=None if labels is None else labels)
        picks = run(ctx, 20, km=2, knn_k=8, **clustering)
        labels = ctx.cache if labels is None else labels
        assert np.isin(picks, candidates).all()
        counts[picks] += 1
        chosen = np.isin(candidates, picks).astype(float)
        together += np.outer(chosen, chosen)
    sizes = np.bincount(labels[CACHE_KEY]["labels"])
    assert sorted(set(sizes)) == ([1] if len(sizes) == 200 else [200])
    assert counts.sum() == 20 * seeds
    # A uniform 20-subset of 40 holds each candidate with probability 1/2: the counts'
    # chi-square (39 degrees of freedom) is neither too large (bias) nor too small
    # (picks more regular than chance), at a 1e-4 two-sided level.
    chi2 = ((counts[candidates] - seeds / 2) ** 2).sum() / (seeds / 4)
    assert stats.chi2.ppf(1e-4, 39) < chi2 < stats.chi2.isf(1e-4, 39)
    # ... and each pair with probability 20·19 / (40·39): no pair is picked together
    # much more or less often (e.g. a run of neighbours in some fixed order would be).
    pair = seeds * 20 * 19 / (40 * 39)
    off = together[np.triu_indices(40, 1)]
    assert np.abs(off - pair).max() < 5.5 * math.sqrt(pair * (1 - pair / seeds))


def test_round_robin_visits_groups_smallest_first_one_pick_per_round():
    groups = np.repeat([7, 3, 9, 4, 1], [8, 1, 5, 2, 3])  # candidate counts 8, 1, 5, 2, 3
    for seed in range(20):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(groups))
        picked = groups[order][round_robin(groups[order], 11, rng)]
        # Rounds: 5 groups, then 4 (count > 1), then the 2 smallest of the 3 with count > 2.
        assert sorted(picked[:5].tolist()) == [1, 3, 4, 7, 9]
        assert picked[:5].tolist() == [3, 4, 1, 9, 7]  # smallest first
        assert picked[5:9].tolist() == [4, 1, 9, 7]
        assert picked[9:].tolist() == [1, 9]
        assert np.unique(picked, return_counts=True)[1].tolist() == [3, 1, 2, 2, 3]


@pytest.mark.parametrize("seed", range(10))
def test_no_cluster_gets_a_second_pick_before_every_candidate_cluster_has_one(pool, seed):
    probs, emb, candidates = pool
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, int(rng.integers(2, 60)), size=200)
    budget = int(rng.integers(1, 40))
    picks = run(context(probs, emb, seed=seed, cache=with_clusters(labels)), budget, km=40 / budget)
    assert np.isin(picks, candidates).all()
    have = np.bincount(labels[candidates], minlength=60)
    got = np.bincount(labels[picks], minlength=60)
    # Round-robin: a cluster is either exhausted or within one pick of the most-picked one.
    assert ((got == have) | (got >= got.max() - 1)).all()
    assert (got > 0).sum() == min(budget, (have > 0).sum())


def near_duplicate_pool(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 far-apart groups of 25 near-copies. Group 0 holds the 25 lowest margins; the
    other groups' margins overlap, so the next-lowest points are spread over them."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(12), 25)
    emb = 20 * rng.normal(size=(12, 16))[group] + 0.01 * rng.normal(size=(300, 16))
    margin = rng.uniform(0.3, 0.6, 300)
    margin[group == 0] = rng.uniform(0, 0.05, 25)
    return margin, emb, group


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("clustering", [{"target_cluster_size": 25}, {"epsilon": 1.0}])
def test_near_duplicates_margin_batch_in_one_group_cluster_margin_batch_across_many(seed,
                                                                                   clustering):
    margin, emb, group = near_duplicate_pool(seed)
    probs = two_class_probs(margin)
    picked = build_strategy({"name": "margin"}).select(context(probs, emb, seed=seed), 12)
    assert set(group[picked]) == {0}
    candidates = np.argsort(margin)[:60]  # km = 5
    reached = set(group[candidates])
    assert len(reached) >= 10
    ctx = context(probs, emb, seed=seed)
    ours = run(ctx, 12, km=5, knn_k=10, **clustering)
    assert np.isin(ours, candidates).all()
    assert set(group[ours]) == reached  # one pick per group first, and 12 ≥ groups reached
    # ε = 1 is far above the longest kNN edge (≈ 0.1): the groups stay apart, as in exact
    # HAC, because they share no edge.
    assert ctx.diagnostics["cm_clusters"] == 12 and ctx.diagnostics["cm_mean_cluster_size"] == 25
    assert len(np.unique(np.stack([ctx.cache[CACHE_KEY]["labels"], group]), axis=1).T) == 12


def test_prepare_clusters_once_and_reuses_the_cache(pool, monkeypatch):
    probs, emb, _ = pool
    calls = []
    real = ClusterMargin.cluster
    monkeypatch.setattr(ClusterMargin, "cluster",
                        lambda self, e, gpu=None: calls.append(1) or real(self, e, gpu))
    ctx = context(probs, emb)
    strategy = ClusterMargin(epsilon=0.5)
    strategy.prepare(ctx)
    labels = ctx.cache[CACHE_KEY]["labels"]
    # A later cycle (or a resumed run) whose outputs could not even embed the pool.
    later = context(probs, None, labelled=[0, 1], seed=1, cache=ctx.cache)
    later.cycle = 3
    strategy.prepare(later)
    assert len(calls) == 1 and later.cache[CACHE_KEY]["labels"] is labels
    assert later.diagnostics["cm_clustered_at_cycle"] == 0
    assert later.diagnostics["cm_epsilon"] == 0.5
    with pytest.raises(SelectionError, match="another pool"):
        strategy.prepare(context(probs[:100], emb[:100], cache=ctx.cache))


def test_checkpoint_round_trips_the_cluster_cache(tmp_path, pool):
    probs, emb, _ = pool
    ctx = context(probs, emb)
    ClusterMargin().prepare(ctx)
    folder = RunFolder(tmp_path)
    folder.start({}, {})
    folder.save(LoopState(next_cycle=1, labelled=np.arange(3), cache=ctx.cache), finished=False)
    restored = folder.load_state().cache[CACHE_KEY]
    np.testing.assert_array_equal(restored["labels"], ctx.cache[CACHE_KEY]["labels"])
    assert restored["epsilon"] == ctx.cache[CACHE_KEY]["epsilon"]


@pytest.mark.parametrize("params,message", [
    ({"km": 0.5}, "km"), ({"epsilon": None, "target_cluster_size": None}, "epsilon"),
    ({"epsilon": -1}, "epsilon"), ({"target_cluster_size": 0}, "target_cluster_size"),
    ({"knn_k": 0}, "knn_k"), ({"knn_index": "annoy"}, "knn_index"), ({"hac": "foo"}, "hac"),
    ({"hac_exact_max_n": 0}, "hac_exact_max_n"),
    ({"multilabel_aggregate": "max"}, "multilabel_aggregate")])
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        build_strategy({"name": "cluster_margin", **params})


@pytest.mark.parametrize("max_n,backend", [(199, "graph"), (200, "exact")])
def test_hac_auto_runs_exact_up_to_hac_exact_max_n_graph_above_and_says_so(pool, max_n, backend,
                                                                           caplog):
    probs, emb, _ = pool
    ctx = context(probs, emb)
    with caplog.at_level(logging.INFO, logger="alharness"):
        ClusterMargin(hac_exact_max_n=max_n, knn_k=5).prepare(ctx)
    state = ctx.cache[CACHE_KEY]
    assert state["hac"] == ctx.diagnostics["cm_hac"] == backend
    assert f"cluster_margin: {backend} average-linkage HAC of 200 points" in caplog.text
    # ε from target_cluster_size is derived on the backend that ran.
    if backend == "exact":
        expected = exact_average_linkage(emb, target_cluster_size=10)
    else:
        graph = neighbour_graph(emb, 5, seed=0)
        expected = average_linkage(emb, graph.ids, graph.dists, target_cluster_size=10,
                                   diameter=diameter_bound(emb))
    assert state["epsilon"] == expected[1]
    np.testing.assert_array_equal(state["labels"], expected[0])


def test_non_finite_embeddings_are_a_selection_error_not_garbage_clusters(pool):
    probs, emb, _ = pool
    emb = emb.copy()
    emb[7, 1] = np.nan
    for hac in ("exact", "graph"):
        with pytest.raises(SelectionError, match="1 of the 200 pool embeddings contain NaN"):
            ClusterMargin(hac=hac).prepare(context(probs, emb))


def test_hac_exact_and_graph_run_whatever_the_pool_size(pool):
    probs, emb, _ = pool
    for hac in ("exact", "graph"):
        ctx = context(probs, emb)
        ClusterMargin(hac=hac, hac_exact_max_n=1 if hac == "exact" else 10**6,
                      knn_k=5).prepare(ctx)
        assert ctx.diagnostics["cm_hac"] == hac


def test_the_knn_search_is_offered_the_models_cuda_device():
    assert cuda_device("cpu") is None and cuda_device(torch.device("cpu")) is None
    assert cuda_device("cuda") == -1 and cuda_device(torch.device("cuda", 2)) == 2
    assert cuda_device("mps") is None


def test_fewer_candidates_than_budget_takes_all_that_remain(pool):
    probs, emb, _ = pool
    picks = run(context(probs, emb, labelled=range(195)), 10)
    assert sorted(picks.tolist()) == [195, 196, 197, 198, 199]


def test_killed_run_resumes_with_the_same_clusters_and_results(make_config, tmp_path, monkeypatch):
    cfg = make_config(["strategy=cluster_margin", "budget.cycles=3"])
    clean = {**cfg, "results_dir": str(tmp_path / "clean")}
    clusterings = []
    real_cluster = ClusterMargin.cluster

    def cluster(self, embeddings, gpu=None):
        state = real_cluster(self, embeddings, gpu)
        clusterings.append(state["labels"].copy())
        return state

    monkeypatch.setattr(ClusterMargin, "cluster", cluster)
    run_experiment(clean)
    assert len(clusterings) == 1

    run_until_killed(cfg, monkeypatch, training_call=3)  # during cycle 2's training
    assert len(clusterings) == 2  # the interrupted run clustered in its cycle 0
    run_experiment(cfg)
    assert len(clusterings) == 2  # the resumed run did not
    (folder,) = (p.parent for p in Path(cfg["results_dir"]).rglob("rows.csv"))
    (reference,) = (p.parent for p in Path(clean["results_dir"]).rglob("rows.csv"))
    rows, ref = pd.read_csv(folder / "rows.csv"), pd.read_csv(reference / "rows.csv")
    assert (rows["cm_clustered_at_cycle"].dropna() == 0).all()
    assert (rows["cm_hac"].dropna() == "exact").all()  # hac=auto on a pool this small
    stable = ["cycle", "n_labelled", "metric", "cm_clusters", "cm_epsilon", "cm_candidates"]
    pd.testing.assert_frame_equal(rows[stable], ref[stable])
    with np.load(folder / "picks.npz") as ours, np.load(reference / "picks.npz") as theirs:
        for key in theirs.files:
            np.testing.assert_array_equal(ours[key], theirs[key])
    state = torch.load(folder / "state.pt", weights_only=False)
    assert len(state["cache"][CACHE_KEY]["labels"]) == rows["n_pool"].iloc[0]
    # The finished run's clusters are the ones the interrupted run computed in cycle 0.
    np.testing.assert_array_equal(state["cache"][CACHE_KEY]["labels"], clusterings[1])


def test_bench_selection_runs_cluster_margin(capsys):
    """The benchmark's worker, in-process (the CLI only adds a subprocess per row)."""
    spec = importlib.util.spec_from_file_location("bench_selection",
                                                  ROOT / "scripts" / "bench_selection.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--strategy", "cluster_margin", "--n", "3000", "--dim", "16",
                       "--batch", "100", "--param", "km=2", "--param", "target_cluster_size=5",
                       "--json", "--worker"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["strategy"] == "cluster_margin" and row["n"] == 3000
    assert row["cm_mean_cluster_size"] >= 5 and row["cm_candidates"] == 200
