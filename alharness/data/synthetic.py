"""Seeded Gaussian-blob pools of any size, for tests and selection benchmarks.

Optionally with groups of near-duplicates (tight copies of one point), the structure
that breaks pure-uncertainty batches and that Cluster-Margin is built for.
"""

from __future__ import annotations

import numpy as np

from alharness.bounds import Count, NonNegative
from alharness.data.base import DatasetInfo, PoolData, register_dataset, tensor_pool_data


def blob_centres(dim: int, classes: int, seed: int = 0, separation: float = 3.0) -> np.ndarray:
    """The class centres `make_blobs` uses for the same arguments (its first random draw)."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=separation / np.sqrt(2.0), size=(classes, dim)).astype(np.float32)


def make_blobs(n: int, dim: int, classes: int, seed: int = 0, separation: float = 3.0,
               duplicate_groups: int = 0, duplicate_size: int = 10,
               duplicate_noise: float = 0.01, n_test: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pool points and ``n_test`` test points around one Gaussian centre per class.

    Each coordinate has unit noise and centres are ~N(0, separation²/2), so two centres
    are about ``separation`` noise-widths apart per coordinate. The last
    ``duplicate_groups × duplicate_size`` pool points form groups of tight
    near-duplicates of random other pool points, labelled like them. Memory is
    O((n + n_test)·dim) float32; generation is vectorised.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation / np.sqrt(2.0), size=(classes, dim)).astype(np.float32)
    total = n + n_test
    y = rng.integers(0, classes, size=total).astype(np.int64)
    x = centres[y]
    x += rng.standard_normal(size=(total, dim), dtype=np.float32)
    groups = min(duplicate_groups, n // max(duplicate_size, 1) // 2)
    if groups:
        n_dup = groups * duplicate_size
        base = rng.choice(n - n_dup, size=groups, replace=False)
        members = np.arange(n - n_dup, n).reshape(groups, duplicate_size)
        noise = rng.standard_normal(size=(groups, duplicate_size, dim), dtype=np.float32)
        x[members] = x[base][:, None, :] + duplicate_noise * noise
        y[members] = y[base][:, None]
    return x[:n], y[:n], x[n:], y[n:]


@register_dataset("synthetic")
def load_synthetic(n: Count = 2000, n_test: Count = 500, dim: Count = 16, classes: Count = 4,
                   separation: float = 3.0, duplicate_groups: NonNegative = 0,
                   duplicate_size: Count = 10, seed: NonNegative = 0) -> PoolData:
    """A blob pool of ``n`` and a test set of ``n_test`` drawn around the same centres."""
    x_pool, y_pool, x_test, y_test = make_blobs(
        n, dim, classes, seed, separation, duplicate_groups, duplicate_size, n_test=n_test)
    info = DatasetInfo(name="synthetic", task="multiclass", num_classes=classes,
                       input_shape=(dim,))
    return tensor_pool_data(info, x_pool, y_pool, x_test, y_test)
