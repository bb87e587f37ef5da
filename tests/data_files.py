"""Tiny datasets written in the real on-disk formats (CIFAR pickles, SVHN .mat, MNIST/EMNIST
idx, Open Images CSVs + JPEGs), shared by the dataset and preset tests."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.io import savemat

N_TRAIN, N_TEST = 60, 20


def write_cifar(root: Path, hundred: bool = False, str_keys: bool = False,
                seed: int = 0) -> dict[str, np.ndarray]:
    """``cifar-10-batches-py`` (5 train batches + test_batch + batches.meta) or
    ``cifar-100-python`` (train, test, meta): pickled dicts with bytes keys (what
    ``pickle.load(f, encoding="bytes")`` gives for the originals) or str keys (what
    torchvision's ``encoding="latin1"`` gives)."""
    rng = np.random.default_rng(seed)
    classes = 100 if hundred else 10
    x = rng.integers(0, 256, size=(N_TRAIN + N_TEST, 3072), dtype=np.uint8)
    y = rng.integers(0, classes, size=N_TRAIN + N_TEST)
    label_key = b"fine_labels" if hundred else b"labels"

    def batch(rows: slice) -> dict:
        entry = {b"batch_label": b"tiny", b"data": x[rows], label_key: y[rows].tolist(),
                 b"filenames": [b"img.png"] * len(y[rows])}
        if hundred:
            entry[b"coarse_labels"] = (y[rows] // 5).tolist()
        return entry

    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    if hundred:
        files = {"train": batch(slice(0, N_TRAIN)), "test": batch(slice(N_TRAIN, None)),
                 "meta": {b"fine_label_names": [b"c%d" % i for i in range(100)],
                          b"coarse_label_names": [b"s%d" % i for i in range(20)]}}
    else:
        per = N_TRAIN // 5
        files = {f"data_batch_{i + 1}": batch(slice(i * per, (i + 1) * per)) for i in range(5)}
        files["test_batch"] = batch(slice(N_TRAIN, None))
        files["batches.meta"] = {b"label_names": [b"c%d" % i for i in range(10)],
                                 b"num_cases_per_batch": per, b"num_vis": 3072}
    for name, entry in files.items():
        if str_keys:
            entry = {k.decode(): v for k, v in entry.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    return {"x": x.reshape(-1, 3, 32, 32), "y": y}


def write_svhn(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """``train_32x32.mat`` / ``test_32x32.mat``: X (32, 32, 3, N) uint8, y (N, 1) in 1..10."""
    rng = np.random.default_rng(seed)
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
        y[0] = 10  # at least one digit 0
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        out[split] = (x, y)
    return out


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx format: 0, 0, type 0x08 (uint8), ndim, big-endian dims, raw data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_set(folder: Path, prefixes: tuple[str, str], classes: int, label_base: int,
                  compress: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    out = {}
    for prefix, n in zip(prefixes, (N_TRAIN, N_TEST), strict=True):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(label_base, label_base + classes, size=n).astype(np.uint8)
        for kind, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            if compress:
                with gzip.open(folder / f"{kind}.gz", "wb") as f:
                    f.write(idx_bytes(arr))
            else:
                (folder / kind).write_bytes(idx_bytes(arr))
        out[prefix] = (x, y)
    return out


def write_mnist(root: Path) -> dict[str, np.ndarray]:
    """``MNIST/raw/*-ubyte.gz`` only (as downloaded, before extraction)."""
    return write_idx_set(root / "MNIST" / "raw", ("train", "t10k"), 10, 0, compress=True)


def write_emnist_letters(root: Path) -> dict[str, np.ndarray]:
    """``EMNIST/raw/emnist-letters-*-ubyte``, uncompressed (torchvision deletes the .gz)."""
    return write_idx_set(root / "EMNIST" / "raw",
                         ("emnist-letters-train", "emnist-letters-test"), 26, 1, compress=False)


OI_CLASSES = {"/m/01yrx": "Cat", "/m/0bt9lr": "Dog", "/m/0k4j": "Car", "/m/07j7r": "Tree",
              "/m/015p6": "Bird"}


def write_openimages(root: Path, n_train: int = 40, n_test: int = 16,
                     seed: int = 0) -> dict[str, dict[str, set[str]]]:
    """Class descriptions (v6, with header), human-verified label CSVs with positives and
    negatives, and small JPEGs; a few labelled train images have no JPEG."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    pd.DataFrame({"LabelName": list(OI_CLASSES), "DisplayName": list(OI_CLASSES.values())}
                 ).to_csv(root / "oidv6-class-descriptions.csv", index=False)
    weights = np.array([0.6, 0.5, 0.4, 0.2, 0.05])  # Cat most frequent, Bird rarest
    truth: dict[str, dict[str, set[str]]] = {}
    for split, n, csv in (("train", n_train, "oidv6-train-annotations-human-imagelabels.csv"),
                          ("validation", n_test, "validation-annotations-human-imagelabels.csv")):
        rows, truth[split] = [], {}
        (root / split).mkdir()
        for i in range(n + 3):
            image_id = f"{rng.integers(0, 2**63):016x}"
            positive = rng.random(5) < weights
            positive[rng.integers(0, 3)] = True  # every image has a frequent class
            for label, pos in zip(OI_CLASSES, positive, strict=True):
                if pos or rng.random() < 0.3:  # verified positives and some verified negatives
                    rows.append((image_id, "verification", label, int(pos)))
            if i < n:  # the last 3 have labels but no JPEG
                Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(
                    root / split / f"{image_id}.jpg")
                truth[split][image_id] = {lab for lab, p in zip(OI_CLASSES, positive, strict=True)
                                          if p}
        pd.DataFrame(rows, columns=["ImageID", "Source", "LabelName", "Confidence"]).to_csv(
            root / csv, index=False)
    return truth
