"""SVHN (cropped digits) from torchvision's on-disk format.

Layout under ``dataset.root`` (what ``torchvision.datasets.SVHN(root, split, download=True)``
writes, directly in root): ``train_32x32.mat`` (73,257 images) and ``test_32x32.mat``
(26,032). Each is a MATLAB v5 file with ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1)
holding 1..10 where 10 means the digit 0; like torchvision we map 10 → 0 so labels are
the digits 0..9. The ``extra`` split is not used (neither paper uses it).

ALFA-Mix uses the first 60,000 training images (``dataset.pool_subset=60000``).
Normalisation: the per-channel mean (0.4377, 0.4438, 0.4728) and std
(0.1980, 0.2010, 0.1970) of the training pixels in [0, 1] (ALFA-Mix's constants).
No augmentation: flips change digits, and ALFA-Mix trains SVHN without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alharness.bounds import Count, NonNegative
from alharness.data.base import PoolData, register_dataset
from alharness.data.files import DatasetFiles, ensure_files, register_files
from alharness.data.images import array_pool_data, check_labels
from alharness.data.transforms import ImageTransform
from alharness.errors import DataError
from alharness.info import DatasetInfo

SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)


def _fetch(root: Path) -> None:
    import torchvision

    for split in ("train", "test"):
        torchvision.datasets.SVHN(str(root), split=split, download=True)


SVHN_FILES = register_files(DatasetFiles(
    name="svhn", files=(("train_32x32.mat",), ("test_32x32.mat",)),
    source="http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat)",
    fetch=_fetch,
))


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), labels 0..9) from one SVHN ``*_32x32.mat`` file."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(str(path))
        x, y = mat["X"], mat["y"]
    except (MatReadError, KeyError, ValueError, TypeError, OSError) as exc:
        raise DataError(f"{path} is not an SVHN .mat file with X and y ({type(exc).__name__}: "
                        f"{exc}); delete it and fetch it again") from exc
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.size:
        raise DataError(f"{path}: X must be (32, 32, 3, N) with N labels in y, "
                        f"got X {x.shape} and y {y.shape}")
    labels = y.astype(np.int64).reshape(-1)
    labels[labels == 10] = 0
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)), dtype=np.uint8)  # N, C, H, W
    return images, check_labels("svhn", labels, 10, str(path))


@register_dataset("svhn")
def load_svhn(root: str = "data", download: bool = True, image_size: Count = 32,
              pool_subset: Count | None = None, val_size: NonNegative = 0,
              split_seed: NonNegative = 0) -> PoolData:
    """SVHN: the training images (or the first ``pool_subset``) as the pool, 10 digits."""
    train_path, test_path = ensure_files(SVHN_FILES, root, download)
    x_train, y_train = read_svhn_mat(train_path)
    x_test, y_test = read_svhn_mat(test_path)
    transform = ImageTransform(SVHN_MEAN, SVHN_STD, image_size)
    info = DatasetInfo(name="svhn", task="multiclass", num_classes=10,
                       input_shape=(3, image_size, image_size))
    return array_pool_data(info, x_train, y_train, x_test, y_test, transform, transform,
                           pool_subset, val_size, split_seed)
