"""Shared pieces of the real image loaders: an in-memory uint8 image dataset and the
assembly of training data into pool (+ optional validation) and test sets.

Images stay uint8 in memory (CIFAR's 50,000×3×32×32 is 150 MB) and are transformed per
item, so the pool's train view (augmented) and eval view (test transforms) share one
copy of the pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from alharness.data.base import PoolData
from alharness.errors import ConfigError, DataError
from alharness.info import DatasetInfo

#: ``make(indices, train)`` → the dataset of those training examples, with training
#: transforms (augmentation) when ``train`` is true and test transforms otherwise.
MakeSubset = Callable[[np.ndarray, bool], Dataset]


class ImageArray(Dataset):
    """Rows ``index`` of a uint8 image tensor (N, C, H, W), transformed per item."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, index: np.ndarray,
                 transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(targets):
            raise ValueError("images must be uint8 (N, C, H, W) with one target per image")
        self.images, self.targets, self.transform = images, targets, transform
        self.index = np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(self.index[i])
        return self.transform(self.images[j]), self.targets[j]


def check_labels(name: str, labels: np.ndarray, num_classes: int, source: str) -> np.ndarray:
    """Integer labels in [0, num_classes), or a `DataError` naming the file."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name}: labels in {source} span {labels.min()}..{labels.max()}, "
                        f"expected 0..{num_classes - 1}; the file is not the {name} format")
    return labels


def pool_indices(n: int, pool_subset: int | None, val_size: int,
                 split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, validation) indices into ``n`` training examples, both sorted.

    ``pool_subset`` keeps the first N training examples (ALFA-Mix uses SVHN's first 60,000);
    ``val_size`` of those are then held out at random with ``split_seed``, so the split is
    the same for every run, seed and strategy.
    """
    if pool_subset is not None:
        if not 1 <= pool_subset <= n:
            raise ConfigError(f"dataset.pool_subset={pool_subset} must be in 1..{n} "
                              f"(the number of training images); use null for all")
        n = int(pool_subset)
    if not 0 <= val_size < n:
        raise ConfigError(f"dataset.val_size={val_size} must be in 0..{n - 1} "
                          f"(the training images left for the pool)")
    order = np.random.default_rng([split_seed, 0x7A1]).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def assemble(info: DatasetInfo, make: MakeSubset, targets: np.ndarray, test: Dataset,
             test_targets: np.ndarray, pool_subset: int | None = None, val_size: int = 0,
             split_seed: int = 0) -> PoolData:
    """`PoolData` from the full training set (via ``make``) and a ready test set."""
    pool, val = pool_indices(len(targets), pool_subset, val_size, split_seed)
    return PoolData(
        info=info, pool_train=make(pool, True), pool_eval=make(pool, False), test=test,
        pool_targets=targets[pool], test_targets=test_targets,
        val=make(val, False) if len(val) else None,
        val_targets=targets[val] if len(val) else None,
    )


def array_pool_data(info: DatasetInfo, train_images: np.ndarray, train_labels: np.ndarray,
                    test_images: np.ndarray, test_labels: np.ndarray,
                    train_transform: Callable, eval_transform: Callable,
                    pool_subset: int | None, val_size: int, split_seed: int) -> PoolData:
    """`PoolData` for uint8 (N, C, H, W) arrays with integer labels (CIFAR, SVHN, MNIST)."""
    x_train = torch.from_numpy(np.ascontiguousarray(train_images))
    y_train = torch.from_numpy(train_labels)
    x_test = torch.from_numpy(np.ascontiguousarray(test_images))
    y_test = torch.from_numpy(test_labels)

    def make(index: np.ndarray, train: bool) -> Dataset:
        return ImageArray(x_train, y_train, index, train_transform if train else eval_transform)

    test = ImageArray(x_test, y_test, np.arange(len(test_labels)), eval_transform)
    return assemble(info, make, train_labels, test, test_labels, pool_subset, val_size,
                    split_seed)
