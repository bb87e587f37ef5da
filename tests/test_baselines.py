"""BALD, CoreSet and BADGE: the behaviour each paper defines, on tiny pools, plus one
end-to-end run of each through ``run.py``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alharness.errors import ConfigError, SelectionError
from alharness.loop.runner import run_experiment
from alharness.strategies import STRATEGIES, SelectionContext, build_strategy, validate_picks
from alharness.strategies.bald import mutual_information
from alharness.strategies.outputs import ArrayOutputs
from tests.conftest import FAST, run_cli
from tests.test_ops_kcenter_kmeanspp import brute_kcenter


def context(outputs: ArrayOutputs, pool: int, labelled=(), seed: int = 0,
            task: str = "multiclass", needs=None) -> SelectionContext:
    labelled = np.asarray(labelled, dtype=np.int64)
    return SelectionContext(
        labelled=labelled, unlabelled=np.setdiff1d(np.arange(pool), labelled), outputs=outputs,
        needs=frozenset(needs or {"probs", "embeddings", "grad_embeddings", "mc_probs"}),
        rng=np.random.default_rng(seed), task=task, pool_size=pool)


def select(name: str, ctx: SelectionContext, budget: int, **params) -> np.ndarray:
    return validate_picks(build_strategy({"name": name, **params}).select(ctx, budget), ctx,
                          budget, name)


# --- BALD ---------------------------------------------------------------------------

def test_bald_ranks_disagreeing_samples_above_agreeing_ones():
    """Point 0: confident passes that disagree. Point 1: every pass says 50/50. Same
    predictive entropy, so only the mutual information tells them apart."""
    disagree = [[0.9, 0.1], [0.1, 0.9]] * 5
    agree = [[0.5, 0.5]] * 10
    confident = [[0.99, 0.01]] * 10
    mc = np.array([disagree, agree, confident], dtype=np.float32).transpose(1, 0, 2)
    mi = mutual_information(mc)
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert mi[0] == pytest.approx(math.log(2) - h, rel=1e-5)
    assert mi[1] == pytest.approx(0, abs=1e-9) and mi[2] == pytest.approx(0, abs=1e-9)
    ctx = context(ArrayOutputs(mc_probs=mc), 3, needs={"mc_probs"})
    assert select("bald", ctx, 1, passes=10).tolist() == [0]


def test_bald_multilabel_uses_per_class_bernoulli_information():
    mc = np.zeros((4, 2, 3), dtype=np.float32)
    mc[:, 0] = [[0.95, 0.5, 0.1], [0.05, 0.5, 0.1]] * 2  # class 0 disagrees across passes
    mc[:, 1] = 0.5  # maximal per-class entropy, full agreement
    mi = mutual_information(mc, "multilabel")
    h = -(0.95 * math.log(0.95) + 0.05 * math.log(0.05))
    assert mi[0] == pytest.approx((math.log(2) - h) / 3, rel=1e-5)
    assert mi[1] == pytest.approx(0, abs=1e-9)
    ctx = context(ArrayOutputs(mc_probs=mc), 2, task="multilabel", needs={"mc_probs"})
    assert select("bald", ctx, 1, passes=4).tolist() == [0]


def test_bald_refuses_samples_without_dropout_and_too_few_passes():
    mc = np.repeat(np.random.default_rng(0).dirichlet([1, 1, 1], size=8)[None], 5, axis=0)
    ctx = context(ArrayOutputs(mc_probs=mc.astype(np.float32)), 8, needs={"mc_probs"})
    with pytest.raises(SelectionError, match="no active dropout") as err:
        select("bald", ctx, 2, passes=5)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="at least 2"):
        build_strategy({"name": "bald", "passes": 1})


def test_bald_in_the_runner_refuses_a_backbone_without_dropout(make_config):
    cfg = make_config(["strategy=bald", "backbone.dropout=0", "budget.cycles=1",
                       "trainer.epochs=1"])
    with pytest.raises(SelectionError, match="dropout") as err:
        run_experiment(cfg)
    assert "\n" not in str(err.value)


# --- CoreSet ------------------------------------------------------------------------

def test_coreset_is_greedy_k_center_from_the_labelled_set_and_records_the_radius():
    x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    labelled = np.arange(0, 200, 10)
    ctx = context(ArrayOutputs(embeddings=x), 200, labelled, needs={"embeddings"})
    picks = select("coreset", ctx, 15)
    unlabelled = np.setdiff1d(np.arange(200), labelled)
    want, radii = brute_kcenter(x[unlabelled], 15, x[labelled])
    np.testing.assert_array_equal(picks, unlabelled[want])
    assert ctx.diagnostics["cover_radius"] == pytest.approx(radii[-1], rel=1e-5)


def test_coreset_on_exact_copies_records_radius_zero_and_fills_in_pool_order():
    """Large-norm embeddings (float32 alone would leave copies 0.016–0.031 apart)."""
    base = (np.random.default_rng(1).normal(size=(12, 256)) * 3 + 2).astype(np.float32)
    x = np.concatenate([base, base, base])  # 36 points; labelled: 0–3 and their copies 12–15
    labelled = np.array([0, 1, 2, 3])
    ctx = context(ArrayOutputs(embeddings=x), 36, labelled, needs={"embeddings"})
    picks = select("coreset", ctx, 11)
    assert ctx.diagnostics["cover_radius"] == 0.0  # float32 alone: 0.03125 here
    distinct = picks[:8]  # base rows 4–11, one copy each, then the rest in pool order
    assert sorted(x[distinct].tolist()) == sorted(base[4:].tolist())
    rest = np.setdiff1d(ctx.unlabelled, distinct)
    np.testing.assert_array_equal(picks[8:], rest[:3])


# --- BADGE --------------------------------------------------------------------------

def two_clusters(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A big and a small tight cluster, far apart in gradient-embedding space."""
    rng = np.random.default_rng(seed)
    sizes = (300, 12)
    probs = np.concatenate([np.tile([0.6, 0.3, 0.1], (sizes[0], 1)),
                            np.tile([0.1, 0.3, 0.6], (sizes[1], 1))]).astype(np.float32)
    centres = np.array([[10, 0, 0, 0], [0, 0, 10, 0]], dtype=np.float32)
    emb = np.repeat(centres, sizes, axis=0) + 0.01 * rng.normal(size=(sum(sizes), 4))
    order = rng.permutation(sum(sizes))
    return probs[order], emb[order].astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_badge_picks_cover_both_tight_clusters(seed):
    probs, emb = two_clusters(seed)
    ctx = context(ArrayOutputs(probs, emb), len(probs), seed=seed, needs={"grad_embeddings"})
    picks = select("badge", ctx, 2)
    assert sorted(probs[picks].argmax(1).tolist()) == [0, 2]  # one from each cluster


def test_badge_multilabel_gradient_is_thresholded_pseudo_label_minus_p():
    probs = np.array([[0.7, 0.2, 0.55], [0.1, 0.9, 0.4]], dtype=np.float32)
    ctx = context(ArrayOutputs(probs, np.ones((2, 3), np.float32)), 2, task="multilabel",
                  needs={"grad_embeddings"})
    np.testing.assert_allclose(ctx.grad_embeddings().scale,
                               [[0.3, -0.2, 0.45], [-0.1, 0.1, -0.4]], atol=1e-6)
    assert len(select("badge", ctx, 2)) == 2


# --- all three ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bald", "coreset", "badge"])
def test_same_seed_same_picks_no_duplicates_and_all_when_budget_exceeds_pool(name):
    rng = np.random.default_rng(0)
    n = 400
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    mc = rng.dirichlet(np.ones(4), size=(10, n)).astype(np.float32)
    outputs = ArrayOutputs(probs, emb, mc)
    labelled = np.arange(0, n, 7)
    needs = STRATEGIES.get(name).needs
    first = select(name, context(outputs, n, labelled, seed=3, needs=needs), 60)
    again = select(name, context(outputs, n, labelled, seed=3, needs=needs), 60)
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first)) == 60 and not np.isin(first, labelled).any()
    everything = select(name, context(outputs, n, labelled, needs=needs), 10 * n)
    assert sorted(everything.tolist()) == np.setdiff1d(np.arange(n), labelled).tolist()


@pytest.mark.slow
def test_each_strategy_runs_end_to_end_through_run_py(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    proc = run_cli(["-m", "strategy=bald,coreset,badge", *FAST, "budget.cycles=1",
                    "trainer.epochs=1", f"results_dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = pd.concat(pd.read_csv(f) for f in tmp_path.glob("*/*/rows.csv"))
    assert sorted(rows["strategy"].unique()) == ["badge", "bald", "coreset"]
    selected = rows[rows["cycle"] == 0]
    assert (selected["n_selected"] == 10).all()
    radius = selected.loc[selected["strategy"] == "coreset", "cover_radius"]
    assert len(radius) == 1 and np.isfinite(radius).all() and (radius > 0).all()
    for folder in tmp_path.glob("*/*/"):
        if (folder / "picks.npz").exists():
            with np.load(folder / "picks.npz") as picks:
                chosen = np.concatenate([picks["initial"], picks["cycle_0"]])
            assert len(np.unique(chosen)) == 30
