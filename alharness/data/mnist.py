"""MNIST and EMNIST letters from torchvision's on-disk idx files.

Layout under ``dataset.root`` (what torchvision ≥ 0.29 writes):
``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (the downloaded ``.gz`` is
kept next to the extracted file; either is read) and
``EMNIST/raw/emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte`` (torchvision
extracts them from NIST's ``gzip.zip``). idx format: a big-endian header, magic
``0x00000803`` (uint8, 3 dims: N, 28, 28) for images and ``0x00000801`` (uint8, N) for
labels, then the raw bytes.

EMNIST letters labels are 1..26 (a..z, upper and lower case merged) in the files; we
subtract 1 so classes are 0..25, as ALFA-Mix does. EMNIST images are stored transposed
relative to MNIST; like torchvision and ALFA-Mix we keep them as stored (a network
trained from scratch does not care; the test set is transposed the same way).

Normalisation: MNIST mean 0.1307, std 0.3081; EMNIST letters mean 0.1722, std 0.3309
(training pixels in [0, 1]; ALFA-Mix reuses MNIST's constants for EMNIST). No
augmentation. ``dataset.image_size=32`` resizes to 32×32 for backbones that need it
(VGG16, ResNet without the CIFAR stem).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from alharness.bounds import Count, NonNegative
from alharness.data.base import PoolData, register_dataset
from alharness.data.files import DatasetFiles, ensure_files, register_files
from alharness.data.images import array_pool_data, check_labels
from alharness.data.transforms import ImageTransform
from alharness.errors import DataError
from alharness.info import DatasetInfo

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
EMNIST_LETTERS_MEAN, EMNIST_LETTERS_STD = (0.1722,), (0.3309,)

#: idx type codes → numpy dtypes (big-endian where multi-byte).
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (gzip-compressed if it ends in ``.gz``) into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} ({type(exc).__name__}: {exc}); "
                        "delete it and fetch it again") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an idx file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[data[2]])
    if len(data) - header != math.prod(shape) * dtype.itemsize:
        raise DataError(f"{path}: header says shape {shape} but the file has "
                        f"{len(data) - header} bytes of data; the file is truncated")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).copy()  # writable


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{images_path} must hold uint8 (N, H, W) images and {labels_path} "
                        f"(N,) labels, got {images.shape} {images.dtype} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels")
    return images[:, None], labels.astype(np.int64)  # add the channel axis


def _idx_names(folder: str, stem: str) -> tuple[str, str]:
    return f"{folder}/{stem}", f"{folder}/{stem}.gz"


def _fetch_mnist(root: Path) -> None:
    import torchvision

    torchvision.datasets.MNIST(str(root), train=False, download=True)


def _fetch_emnist(root: Path) -> None:
    import torchvision

    torchvision.datasets.EMNIST(str(root), split="letters", train=False, download=True)


MNIST_FILES = register_files(DatasetFiles(
    name="mnist",
    files=tuple(_idx_names("MNIST/raw", f"{split}-{kind}-ubyte")
                for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")),
    source="https://ossci-datasets.s3.amazonaws.com/mnist/",
    fetch=_fetch_mnist,
))
EMNIST_LETTERS_FILES = register_files(DatasetFiles(
    name="emnist_letters",
    files=tuple(_idx_names("EMNIST/raw", f"emnist-letters-{split}-{kind}-ubyte")
                for split in ("train", "test") for kind in ("images-idx3", "labels-idx1")),
    source="https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
    fetch=_fetch_emnist,
))


def _load(name: str, files: DatasetFiles, num_classes: int, label_offset: int,
          mean: tuple[float, ...], std: tuple[float, ...], root: str, download: bool,
          image_size: int, pool_subset: int | None, val_size: int,
          split_seed: int) -> PoolData:
    train_images, train_labels, test_images, test_labels = ensure_files(files, root, download)
    x_train, y_train = _read_pair(train_images, train_labels)
    x_test, y_test = _read_pair(test_images, test_labels)
    y_train = check_labels(name, y_train - label_offset, num_classes, str(train_labels))
    y_test = check_labels(name, y_test - label_offset, num_classes, str(test_labels))
    transform = ImageTransform(mean, std, image_size)
    info = DatasetInfo(name=name, task="multiclass", num_classes=num_classes,
                       input_shape=(1, image_size, image_size))
    return array_pool_data(info, x_train, y_train, x_test, y_test, transform, transform,
                           pool_subset, val_size, split_seed)


@register_dataset("mnist")
def load_mnist(root: str = "data", download: bool = True, image_size: Count = 28,
               pool_subset: Count | None = None, val_size: NonNegative = 0,
               split_seed: NonNegative = 0) -> PoolData:
    """MNIST: 60,000 training images (the pool) and 10,000 test images, digits 0..9."""
    return _load("mnist", MNIST_FILES, 10, 0, MNIST_MEAN, MNIST_STD, root, download,
                 image_size, pool_subset, val_size, split_seed)


@register_dataset("emnist_letters")
def load_emnist_letters(root: str = "data", download: bool = True, image_size: Count = 28,
                        pool_subset: Count | None = None, val_size: NonNegative = 0,
                        split_seed: NonNegative = 0) -> PoolData:
    """EMNIST letters: 124,800 training and 20,800 test images, letters a..z as 0..25."""
    return _load("emnist_letters", EMNIST_LETTERS_FILES, 26, 1, EMNIST_LETTERS_MEAN,
                 EMNIST_LETTERS_STD, root, download, image_size, pool_subset, val_size,
                 split_seed)
