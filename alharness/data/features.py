"""A user's precomputed embeddings: an ``.npz`` with ``X``, ``y`` and optionally
``X_test``, ``y_test``. Train a linear or MLP head on them (``backbone=mlp``).

Targets are integer class ids (multi-class) or a 2-D 0/1 matrix (multi-label).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alharness.bounds import NonNegative
from alharness.data.base import (
    DatasetInfo,
    PoolData,
    register_dataset,
    seeded_split,
    tensor_pool_data,
)
from alharness.errors import ConfigError, DataError


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"features file {path} does not exist; set dataset.path=/path/to/file.npz "
                        "holding arrays X, y (and optionally X_test, y_test)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile/format errors come in many types
        raise DataError(f"cannot read {path} as .npz ({exc}); write it with numpy.savez") from exc


@register_dataset("features")
def load_features(path: str, test_fraction: float = 0.2, split_seed: NonNegative = 0,
                  standardize: bool = True) -> PoolData:
    """Load embeddings; without ``X_test`` a fixed split seeded by ``split_seed`` is made."""
    if not path:
        raise ConfigError("dataset=features needs dataset.path=/path/to/file.npz")
    arrays = _read_npz(Path(path).expanduser())
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks array(s) {missing}; it has {sorted(arrays)}")
    x, y = arrays["X"].astype(np.float32), arrays["y"]
    if "X_test" in arrays and "y_test" in arrays:
        x_pool, y_pool = x, y
        x_test, y_test = arrays["X_test"].astype(np.float32), arrays["y_test"]
    else:
        pool, test = seeded_split(len(y), test_fraction, split_seed)
        x_pool, y_pool, x_test, y_test = x[pool], y[pool], x[test], y[test]
    if x_pool.ndim != 2 or x_test.ndim != 2 or x_pool.shape[1] != x_test.shape[1]:
        raise DataError(f"{path}: X and X_test must be 2-D with the same width, "
                        f"got {x_pool.shape} and {x_test.shape}")
    multilabel = y_pool.ndim == 2
    if multilabel:
        num_classes = y_pool.shape[1]
        y_pool, y_test = y_pool.astype(np.float32), y_test.astype(np.float32)
    else:
        y_pool, y_test = y_pool.astype(np.int64), y_test.astype(np.int64)
        num_classes = int(max(y_pool.max(), y_test.max())) + 1
    if standardize:
        mean, std = x_pool.mean(axis=0), x_pool.std(axis=0) + 1e-6
        x_pool, x_test = (x_pool - mean) / std, (x_test - mean) / std
    info = DatasetInfo(name="features", task="multilabel" if multilabel else "multiclass",
                       num_classes=num_classes, input_shape=(x_pool.shape[1],))
    return tensor_pool_data(info, x_pool, y_pool, x_test, y_test)
