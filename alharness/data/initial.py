"""The initial labelled set: drawn from the run's seed only, so every strategy under the
same seed starts from the same points (the papers' protocol)."""

from __future__ import annotations

import numpy as np

from alharness.errors import ConfigError

INITIAL_MODES = ("uniform", "per_class")


def initial_labelled(pool_targets: np.ndarray, size: int, seed: int,
                     mode: str = "uniform") -> np.ndarray:
    """Sorted pool indices of the initial labelled set.

    ``uniform``: a uniform sample of the pool (ALFA-Mix's runner). ``per_class``: as equal
    a share of each class as the pool allows (multi-class only).
    """
    n = len(pool_targets)
    if size > n:
        raise ConfigError(f"budget.initial={size} exceeds the pool size {n}; lower budget.initial")
    rng = np.random.default_rng([seed, 0x1A1])
    if mode == "uniform":
        return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)
    if mode == "per_class":
        if pool_targets.ndim != 1:
            raise ConfigError("budget.initial_mode=per_class needs single-label targets; "
                              "use budget.initial_mode=uniform for multi-label data")
        classes = np.unique(pool_targets)
        shuffled = rng.permutation(n)
        by_class = [shuffled[pool_targets[shuffled] == c] for c in classes]
        picks: list[int] = []
        rank = 0
        while len(picks) < size:  # round-robin over classes: one loop per *rank*, not per point
            layer = [members[rank] for members in by_class if rank < len(members)]
            picks.extend(layer[: size - len(picks)])
            rank += 1
        return np.sort(np.asarray(picks, dtype=np.int64))
    raise ConfigError(f"budget.initial_mode={mode!r} is not one of {INITIAL_MODES}")
