"""The dataset contract: a pool (with train and eval views), a test set, and what task it is.

Loaders are registered by name and take the dataset config's parameters. Every loader
returns a `PoolData`; the runner, trainer and metrics read only this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch
from annotated_types import Ge
from torch.utils.data import Dataset

from alharness.errors import ConfigError
from alharness.info import TASKS, DatasetInfo
from alharness.plugins import DATASETS_GROUP
from alharness.registry import Registry


@dataclass
class PoolData:
    """A pool to select from and a test set to score on.

    ``pool_train`` and ``pool_eval`` hold the same examples in the same order; the first
    applies training transforms (augmentation), the second test transforms, which is
    what inference and selection must see.
    """

    info: DatasetInfo
    pool_train: Dataset
    pool_eval: Dataset
    test: Dataset
    pool_targets: np.ndarray  # (n,) int64 or (n, C) multi-hot
    test_targets: np.ndarray
    #: Optional held-out validation set (test transforms), carved from the training data
    #: and excluded from the pool; ``None`` when the dataset has none.
    val: Dataset | None = None
    val_targets: np.ndarray | None = None

    @property
    def pool_size(self) -> int:
        return len(self.pool_targets)


class TensorPool(Dataset):
    """In-memory examples ``x[i], y[i]`` with an optional per-example transform."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.y[i]


def tensor_pool_data(info: DatasetInfo, x_pool: np.ndarray, y_pool: np.ndarray,
                     x_test: np.ndarray, y_test: np.ndarray,
                     train_transform: Callable | None = None) -> PoolData:
    """Build `PoolData` from in-memory arrays (features, digits, synthetic blobs)."""
    xp = torch.as_tensor(np.ascontiguousarray(x_pool), dtype=torch.float32)
    xt = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32)
    target_dtype = torch.float32 if info.task == "multilabel" else torch.int64
    yp = torch.as_tensor(y_pool, dtype=target_dtype)
    yt = torch.as_tensor(y_test, dtype=target_dtype)
    return PoolData(
        info=info,
        pool_train=TensorPool(xp, yp, train_transform),
        pool_eval=TensorPool(xp, yp),
        test=TensorPool(xt, yt),
        pool_targets=np.asarray(y_pool),
        test_targets=np.asarray(y_test),
    )


def seeded_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed pool/test split of ``n`` examples; the same for every run and strategy."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"dataset.test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


DatasetLoader = Callable[..., PoolData]

#: Config keys that describe a dataset rather than parameterise its loader (their type
#: hints are part of the dataset's schema); `load_dataset` checks them against the data.
DECLARED_KEYS: dict[str, Any] = {
    "task": Literal[TASKS] | None,
    "num_classes": Annotated[int, Ge(1)] | None,
    "input_shape": Sequence[Annotated[int, Ge(1)]] | None,
}
DATASETS: Registry[DatasetLoader] = Registry("dataset", plugin_group=DATASETS_GROUP)


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Function decorator: ``@register_dataset("digits") def load(**params) -> PoolData``."""
    return DATASETS.register(name)


def load_dataset(cfg: Mapping[str, Any]) -> PoolData:
    """Load from a config mapping ``{"name": ..., **params}``.

    Keys that describe the dataset rather than parameterise the loader (``task``,
    ``num_classes``, ``input_shape``) are checked against what the loader returns.
    """
    params = dict(cfg)
    name = params.pop("name", None)
    declared = {k: params.pop(k) for k in DECLARED_KEYS if k in params}
    data = DATASETS.get(name)(**params)
    for key, value in declared.items():
        actual = getattr(data.info, key)
        if value is not None and tuple(np.atleast_1d(value)) != tuple(np.atleast_1d(actual)):
            raise ConfigError(
                f"dataset {name!r}: config says {key}={value} but the data has {actual}; "
                f"fix configs/dataset/{name}.yaml or the override"
            )
    return data
