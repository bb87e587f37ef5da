"""Two interleaving half-moons (scikit-learn's generator): a 2-d binary task whose class
boundary is curved, so a linear model cannot fit it and uncertainty sampling has work."""

from __future__ import annotations

import numpy as np

from alharness.data.base import DatasetInfo, PoolData, register_dataset, tensor_pool_data


@register_dataset("moons")
def load_moons(n: int = 1000, n_test: int = 300, noise: float = 0.2, seed: int = 0) -> PoolData:
    """A pool of ``n`` points and a test set of ``n_test``, both drawn with ``seed``."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n + n_test, noise=noise, random_state=seed)
    x = x.astype(np.float32)
    info = DatasetInfo(name="moons", task="multiclass", num_classes=2, input_shape=(2,))
    return tensor_pool_data(info, x[:n], y[:n], x[n:], y[n:])
