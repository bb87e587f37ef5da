"""scikit-learn's handwritten digits: a real dataset that ships with the package.

1,797 grey 8×8 images of the digits 0–9 (the UCI optical-recognition test set). The
default run uses it so ``python run.py`` needs no network.
"""

from __future__ import annotations

import numpy as np

from alharness.bounds import NonNegative
from alharness.data.base import (
    DatasetInfo,
    PoolData,
    register_dataset,
    seeded_split,
    tensor_pool_data,
)


@register_dataset("digits")
def load_digits(test_fraction: float = 0.2, split_seed: NonNegative = 0) -> PoolData:
    """Pool/test split fixed by ``split_seed`` (not the run seed), pixels scaled to [0, 1]
    and standardised with the pool's mean and std."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    pool, test = seeded_split(len(y), test_fraction, split_seed)
    mean, std = x[pool].mean(), x[pool].std()
    x = (x - mean) / std
    info = DatasetInfo(name="digits", task="multiclass", num_classes=10, input_shape=(1, 8, 8))
    return tensor_pool_data(info, x[pool], y[pool], x[test], y[test])
