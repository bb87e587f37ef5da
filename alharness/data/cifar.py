"""CIFAR-10 and CIFAR-100 from torchvision's on-disk format.

Layout under ``dataset.root`` (what ``torchvision.datasets.CIFAR10/100(root, download=True)``
writes): ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``;
``cifar-100-python/train`` and ``test``. Each file is a pickled dict whose ``data`` is a
uint8 (N, 3072) array (the R, G, B planes of a 32×32 image, row-major) and whose labels
are ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100, 100 classes). Keys may be str
(the original Python 2 pickles read with latin-1, as torchvision does) or bytes.

Normalisation uses each training set's per-channel mean and standard deviation of pixels
in [0, 1] (the widely copied ``(0.2023, 0.1994, 0.2010)`` CIFAR-10 "std", which
ALFA-Mix's code uses, is not the pixel std). Augmentation, on by default
(``dataset.augment``), is the standard random 32×32 crop of the image zero-padded by 4
plus a horizontal flip, applied to training batches only; inference and selection see
the test transform.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from alharness.bounds import Count, NonNegative
from alharness.data.base import PoolData, register_dataset
from alharness.data.files import DatasetFiles, ensure_files, register_files
from alharness.data.images import array_pool_data, check_labels
from alharness.data.transforms import ImageTransform
from alharness.errors import DataError
from alharness.info import DatasetInfo

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def _fetch(cls_name: str) -> Callable[[Path], None]:
    def fetch(root: Path) -> None:
        import torchvision

        # train=False: the download covers both splits and then reads only the small test file
        getattr(torchvision.datasets, cls_name)(str(root), train=False, download=True)

    return fetch


CIFAR10_FILES = register_files(DatasetFiles(
    name="cifar10",
    files=tuple((f"cifar-10-batches-py/{f}",) for f in
                [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]),
    source="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    fetch=_fetch("CIFAR10"),
))
CIFAR100_FILES = register_files(DatasetFiles(
    name="cifar100",
    files=(("cifar-100-python/train",), ("cifar-100-python/test",)),
    source="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    fetch=_fetch("CIFAR100"),
))


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), labels (N,)) from one pickled CIFAR batch file."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
        data, labels = entry["data"], entry[label_key]
    except (pickle.UnpicklingError, EOFError, AttributeError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a CIFAR batch with 'data' and '{label_key}' "
                        f"({type(exc).__name__}: {exc}); delete it and fetch it again") from exc
    images = np.asarray(data, dtype=np.uint8)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or len(images) != len(labels):
        raise DataError(f"{path}: 'data' must be uint8 (N, 3072) with one label per row, "
                        f"got {images.shape} and {len(labels)} labels")
    return images.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _load_cifar(name: str, files: DatasetFiles, label_key: str, num_classes: int,
                mean: tuple[float, ...], std: tuple[float, ...], root: str, download: bool,
                augment: bool, image_size: int, pool_subset: int | None, val_size: int,
                split_seed: int) -> PoolData:
    paths = ensure_files(files, root, download)
    batches = [read_cifar_batch(p, label_key) for p in paths]
    train, test = batches[:-1], batches[-1]
    x_train = np.concatenate([b[0] for b in train])
    y_train = check_labels(name, np.concatenate([b[1] for b in train]), num_classes,
                           str(paths[0].parent))
    y_test = check_labels(name, test[1], num_classes, str(paths[-1]))
    eval_tf = ImageTransform(mean, std, image_size)
    train_tf = (ImageTransform(mean, std, image_size, crop_padding=max(1, image_size // 8),
                               flip=True) if augment else eval_tf)
    info = DatasetInfo(name=name, task="multiclass", num_classes=num_classes,
                       input_shape=(3, image_size, image_size))
    return array_pool_data(info, x_train, y_train, test[0], y_test, train_tf, eval_tf,
                           pool_subset, val_size, split_seed)


@register_dataset("cifar10")
def load_cifar10(root: str = "data", download: bool = True, augment: bool = True,
                 image_size: Count = 32, pool_subset: Count | None = None, val_size: NonNegative = 0,
                 split_seed: NonNegative = 0) -> PoolData:
    """CIFAR-10: 50,000 training images (the pool) and 10,000 test images, 10 classes."""
    return _load_cifar("cifar10", CIFAR10_FILES, "labels", 10, CIFAR10_MEAN, CIFAR10_STD,
                       root, download, augment, image_size, pool_subset, val_size, split_seed)


@register_dataset("cifar100")
def load_cifar100(root: str = "data", download: bool = True, augment: bool = True,
                  image_size: Count = 32, pool_subset: Count | None = None, val_size: NonNegative = 0,
                  split_seed: NonNegative = 0) -> PoolData:
    """CIFAR-100 with its 100 fine labels: 50,000 training and 10,000 test images."""
    return _load_cifar("cifar100", CIFAR100_FILES, "fine_labels", 100, CIFAR100_MEAN,
                       CIFAR100_STD, root, download, augment, image_size, pool_subset,
                       val_size, split_seed)
