"""Top-k selection in O(n) with seeded random tie-breaking."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator | None = None,
          largest: bool = True) -> np.ndarray:
    """Positions of the ``k`` largest (or smallest) scores, best first.

    Ties are broken uniformly at random when ``rng`` is given (otherwise by position),
    so a pool stored in class order does not bias the pick. ``argpartition`` keeps it
    linear in the pool; only the ``k`` winners are sorted.
    """
    scores = np.asarray(scores)
    n = scores.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    keyed = scores[order]
    if largest:
        keyed = -keyed
    part = np.argpartition(keyed, k - 1)[:k] if k < n else np.arange(n)
    part = part[np.argsort(keyed[part], kind="stable")]
    return order[part].astype(np.int64)
