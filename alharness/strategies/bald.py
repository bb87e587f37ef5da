"""BALD: Bayesian Active Learning by Disagreement (Houlsby et al., 2011, Sec. 3), with the
posterior approximated by MC dropout as in Gal, Islam & Ghahramani (ICML 2017, Sec. 3).

The score is the mutual information between the label and the model weights,
I[y; w | x] = H[E_w p(y|x, w)] − E_w H[p(y|x, w)]: high where the dropout samples are
each confident but disagree with one another. The batch is the top-``budget`` points by
that score (the "top-b BALD" both papers compare against, not BatchBALD).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from alharness.bounds import Several
from alharness.errors import SelectionError
from alharness.ops.topk import top_k
from alharness.strategies import scores
from alharness.strategies.base import SelectionContext, Strategy, register_strategy


def mutual_information(mc_probs: np.ndarray, task: str = "multiclass") -> np.ndarray:
    """(passes, n, C) sampled probabilities -> (n,) mutual information in nats.

    Multi-label reading: every class is its own Bernoulli label, so the score is the mean
    over classes of the per-class binary mutual information (the sum ranks identically).
    Accumulated one pass at a time in float64: no (passes, n, C) temporaries.
    """
    mean = np.zeros(mc_probs.shape[1:], dtype=np.float64)
    expected_entropy = np.zeros(mc_probs.shape[1], dtype=np.float64)
    for sample in mc_probs:
        mean += sample
        expected_entropy += scores.entropy(sample.astype(np.float64), task)
    mean /= len(mc_probs)
    expected_entropy /= len(mc_probs)
    return np.maximum(scores.entropy(mean, task) - expected_entropy, 0.0)


@register_strategy("bald")
class BALD(Strategy):
    """Top-``budget`` unlabelled points by MC-dropout mutual information over ``passes`` samples.

    The samples come from the runner's MC dropout (dropout layers sampling, batch-norm
    statistics frozen, `alharness.training.inference.predict_mc`). Without active dropout
    every sample is identical and every score 0 (a known defect of a popular reference
    implementation), so that is refused rather than silently returning an arbitrary batch.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"mc_probs"})

    def __init__(self, passes: Several = 10) -> None:
        self.passes = int(passes)

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        samples = ctx.mc_probs(self.passes)
        if all(np.array_equal(sample, samples[0]) for sample in samples[1:]):
            raise SelectionError(f"bald: all {self.passes} MC-dropout passes gave identical "
                                 "probabilities, so the model has no active dropout; use a "
                                 "backbone with dropout > 0 (e.g. backbone.dropout=0.3)")
        score = mutual_information(samples, ctx.task)
        return ctx.unlabelled[top_k(score, budget, ctx.rng, largest=True)]
