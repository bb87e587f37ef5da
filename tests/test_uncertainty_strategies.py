"""Random, least confidence, margin, entropy: each picks what its definition says, on
pools built so the answer is known; and the strategy contract is enforced."""

from __future__ import annotations

import numpy as np
import pytest

from alharness.errors import ConfigError, SelectionError
from alharness.ops.topk import top_k
from alharness.strategies import (
    STRATEGIES,
    SelectionContext,
    build_strategy,
    scores,
    validate_picks,
)
from alharness.strategies.outputs import ArrayOutputs


def context(probs: np.ndarray, labelled=(), seed: int = 0, task: str = "multiclass",
            needs=frozenset({"probs"})) -> SelectionContext:
    n = len(probs)
    unlabelled = np.setdiff1d(np.arange(n), np.asarray(labelled, dtype=np.int64))
    return SelectionContext(labelled=np.asarray(labelled, dtype=np.int64), unlabelled=unlabelled,
                            outputs=ArrayOutputs(probs=probs), needs=needs,
                            rng=np.random.default_rng(seed), task=task,
                            num_classes=probs.shape[1], pool_size=n)


def select(name: str, probs: np.ndarray, budget: int, **kwargs) -> np.ndarray:
    ctx = context(probs, **kwargs)
    strategy = build_strategy({"name": name})
    return validate_picks(strategy.select(ctx, budget), ctx, budget, name)


# Rows: confident / small top-2 gap but peaked / flat over 3 classes / flat over 2 classes.
PROBS = np.array([
    [0.98, 0.01, 0.01, 0.00],
    [0.50, 0.46, 0.04, 0.00],
    [0.34, 0.33, 0.33, 0.00],
    [0.45, 0.45, 0.05, 0.05],
], dtype=np.float32)


def test_margin_picks_the_smallest_top2_gap():
    assert select("margin", PROBS, 1).tolist() == [3]  # gap 0.00
    assert sorted(select("margin", PROBS, 2).tolist()) == [2, 3]  # gaps 0.00, 0.01


def test_least_confidence_picks_the_lowest_top1():
    assert select("least_confidence", PROBS, 1).tolist() == [2]  # max 0.34


def test_entropy_picks_the_flattest_distribution():
    assert select("entropy", PROBS, 1).tolist() == [2]  # ≈ log 3
    assert np.isclose(scores.entropy(PROBS)[2], -3 * (1 / 3) * np.log(1 / 3), atol=1e-2)


def test_margin_and_entropy_disagree_where_their_definitions_do():
    """Row 1 has a smaller gap than row 0 of this pair but lower entropy."""
    probs = np.array([[0.4, 0.3, 0.3], [0.5, 0.49, 0.01]], dtype=np.float32)
    assert select("margin", probs, 1).tolist() == [1]
    assert select("entropy", probs, 1).tolist() == [0]


def test_labelled_points_are_never_picked():
    assert 3 not in select("margin", PROBS, 2, labelled=[3]).tolist()


def test_random_is_uniform_and_seeded():
    probs = np.full((50, 2), 0.5, dtype=np.float32)
    counts = np.zeros(50)
    for seed in range(400):
        counts[select("random", probs, 5, seed=seed)] += 1
    assert counts.min() > 10 and counts.max() < 80  # expected 40 each
    np.testing.assert_array_equal(select("random", probs, 5, seed=7),
                                  select("random", probs, 5, seed=7))


def test_budget_larger_than_unlabelled_returns_all_that_remain():
    assert sorted(select("entropy", PROBS, 10, labelled=[0]).tolist()) == [1, 2, 3]


def test_ties_are_broken_at_random_not_by_position():
    scores_ = np.zeros(100)
    firsts = {int(top_k(scores_, 1, np.random.default_rng(s))[0]) for s in range(20)}
    assert len(firsts) > 10
    assert top_k(np.array([3.0, 1.0, 2.0]), 2, largest=False).tolist() == [1, 2]


def test_multilabel_margin_uses_the_most_uncertain_class():
    probs = np.array([[0.9, 0.1, 0.55], [0.6, 0.4, 0.95], [0.99, 0.01, 0.01]], dtype=np.float32)
    np.testing.assert_allclose(scores.margin(probs, "multilabel", "min"), [0.1, 0.2, 0.98], atol=1e-6)
    np.testing.assert_allclose(scores.margin(probs, "multilabel", "mean"),
                               [(0.8 + 0.8 + 0.1) / 3, (0.2 + 0.2 + 0.9) / 3, 0.98], atol=1e-6)
    assert select("margin", probs, 1, task="multilabel").tolist() == [0]


def test_undeclared_output_is_refused():
    ctx = context(PROBS, needs=frozenset())
    with pytest.raises(SelectionError, match="did not declare"):
        ctx.probs()


def test_contract_violations_are_caught():
    ctx = context(PROBS, labelled=[0])
    with pytest.raises(SelectionError, match="duplicate"):
        validate_picks(np.array([1, 1]), ctx, 2, "x")
    with pytest.raises(SelectionError, match="not unlabelled"):
        validate_picks(np.array([0, 1]), ctx, 2, "x")
    with pytest.raises(SelectionError, match="expected 2"):
        validate_picks(np.array([1]), ctx, 2, "x")


def test_unknown_names_and_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="strategy.name: unknown strategy 'nope' .*margin"):
        build_strategy({"name": "nope"})
    with pytest.raises(ConfigError, match="strategy.km: unknown key"):
        build_strategy({"name": "margin", "km": 3})
    assert {"random", "margin", "entropy", "least_confidence"} <= set(STRATEGIES.names())
