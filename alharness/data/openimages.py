"""Open Images subsets (multi-label): images from JPEGs, or precomputed embeddings.

``dataset=openimages`` reads ``<root>/<split>/<ImageID>.jpg`` (the layout of the CVDF
download once unpacked; any RGB size), resized to ``image_size``×``image_size``
(bilinear; aspect ratio not kept), normalised with the ImageNet mean/std the usual
pretrained backbones expect; ``augment`` adds a horizontal flip on training batches.

``dataset=openimages_features`` joins the same kind of manifest with a file of
embeddings, for pools of millions where only a head is trained (``backbone=linear`` or
``mlp``), the practical way to run Cluster-Margin's 100K–1M batch setting. The file is
an ``.npz`` with ``image_ids`` (str) and ``embeddings`` (n, d), as
``scripts/extract_features.py`` writes, or a ``.parquet`` with ``ImageID`` and a
list-valued ``embedding`` column. Memory: the embeddings (n·d floats) plus uint8
multi-hot targets (n·K bytes).

Both use the manifest of `alharness.data.openimages_manifest`: the pool split's images
are the pool (minus ``val_size`` held out), the test split's the test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch.utils.data import Dataset

from alharness.bounds import Count, NonNegative
from alharness.data.base import PoolData, register_dataset
from alharness.data.images import assemble
from alharness.data.openimages_manifest import (
    KeepFilter,
    SubsetSpec,
    load_or_build_manifest,
    multi_hot,
)
from alharness.data.transforms import ImageTransform
from alharness.errors import ConfigError, DataError
from alharness.info import DatasetInfo

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class JpegImages(Dataset):
    """Rows ``index`` of the images ``<folder>/<ImageID>.jpg`` with multi-hot targets,
    decoded and resized per item."""

    def __init__(self, folder: Path, image_ids: np.ndarray, targets: np.ndarray,
                 index: np.ndarray, size: int, transform: ImageTransform) -> None:
        self.folder, self.ids, self.targets = folder, image_ids, targets
        self.index, self.size, self.transform = np.asarray(index, np.int64), size, transform

    @property
    def image_ids(self) -> np.ndarray:
        """The Open Images IDs of this dataset's items, in item order."""
        return self.ids[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(self.index[i])
        path = self.folder / f"{self.ids[j]}.jpg"
        try:
            with Image.open(path) as img:
                img.draft("RGB", (self.size, self.size))  # JPEG: decode at reduced scale
                img = img.convert("RGB").resize((self.size, self.size),
                                                Image.Resampling.BILINEAR)
                pixels = torch.from_numpy(np.array(img)).permute(2, 0, 1)
        except OSError as exc:  # includes PIL's UnidentifiedImageError
            raise DataError(f"cannot read image {path} ({exc}); replace it, or delete it "
                            "and the manifest under <root>/manifests/") from exc
        return self.transform(pixels), torch.from_numpy(self.targets[j].astype(np.float32))


class EmbeddingRows(Dataset):
    """Rows of an embedding matrix (``rows[i]`` for item i) with multi-hot targets."""

    def __init__(self, embeddings: np.ndarray, rows: np.ndarray, targets: np.ndarray,
                 index: np.ndarray) -> None:
        self.embeddings, self.rows, self.targets = embeddings, rows, targets
        self.index = np.asarray(index, np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(self.index[i])
        x = np.array(self.embeddings[self.rows[j]], dtype=np.float32)  # a writable copy
        return torch.from_numpy(x), torch.from_numpy(self.targets[j].astype(np.float32))


def subset_spec(classes: Sequence[str] | str | None, top_k: int | None, pool_split: str,
                test_split: str, max_pool: int | None, max_test: int | None,
                embeddings: Path | None = None) -> SubsetSpec:
    """The subset a config asks for; ``classes`` may be a list or a comma-separated string.
    With ``embeddings``, an image is usable when it has a row there, else when its JPEG exists."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    return SubsetSpec(classes=tuple(classes) if classes else None,
                      top_k=None if classes else top_k,  # unused with a class list
                      pool_split=pool_split, test_split=test_split, max_pool=max_pool,
                      max_test=max_test,
                      source=f"embeddings:{embeddings}" if embeddings else "images")


def jpeg_filter(root: Path) -> KeepFilter:
    """Usable = ``<root>/<split>/<ImageID>.jpg`` exists."""

    def keep(split: str, ids: np.ndarray) -> np.ndarray:
        return np.fromiter(((root / split / f"{i}.jpg").is_file() for i in ids), bool, len(ids))

    return keep


def embedding_filter(sorted_ids: np.ndarray) -> KeepFilter:
    """Usable = the ImageID has a row in the embeddings file (``sorted_ids``, sorted)."""

    def keep(split: str, ids: np.ndarray) -> np.ndarray:
        return np.isin(ids, sorted_ids, assume_unique=True)

    return keep


def _targets_by_role(table: pa.Table, num_classes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """role → (ImageIDs, uint8 multi-hot targets)."""
    roles = np.asarray(table.column("role").to_numpy(zero_copy_only=False), dtype=str)
    ids = np.asarray(table.column("ImageID").to_numpy(zero_copy_only=False), dtype=str)
    targets = multi_hot(table.column("labels"), num_classes)
    return {role: (ids[roles == role], targets[roles == role]) for role in ("pool", "test")}


@register_dataset("openimages")
def load_openimages(root: str = "data/openimages", classes: Sequence[str] | None = None,
                    top_k: Count | None = 20, pool_split: str = "train",
                    test_split: str = "validation", max_pool: Count | None = None,
                    max_test: Count | None = None, image_size: Count = 224, augment: bool = True,
                    val_size: NonNegative = 0, split_seed: NonNegative = 0,
                    manifest_dir: str | None = None) -> PoolData:
    """An Open Images subset as images: task multilabel, one class per chosen label."""
    base = Path(root).expanduser()
    spec = subset_spec(classes, top_k, pool_split, test_split, max_pool, max_test)
    table, class_table = load_or_build_manifest(base, spec, jpeg_filter(base), manifest_dir)
    by_role = _targets_by_role(table, len(class_table))
    eval_tf = ImageTransform(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = ImageTransform(IMAGENET_MEAN, IMAGENET_STD, flip=True) if augment else eval_tf

    def images(role: str, index: np.ndarray, transform: ImageTransform) -> JpegImages:
        ids, targets = by_role[role]
        return JpegImages(base / spec.split(role), ids, targets, index, image_size, transform)

    info = DatasetInfo(name="openimages", task="multilabel", num_classes=len(class_table),
                       input_shape=(3, image_size, image_size))
    test_targets = by_role["test"][1]
    return assemble(
        info, lambda index, train: images("pool", index, train_tf if train else eval_tf),
        by_role["pool"][1], images("test", np.arange(len(test_targets)), eval_tf),
        test_targets, val_size=val_size, split_seed=split_seed)


def read_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ImageIDs (n,), embeddings (n, d)) from an ``.npz`` or ``.parquet`` file."""
    if not path.is_file():
        raise DataError(f"embeddings file {path} does not exist; write one with "
                        "`python scripts/extract_features.py dataset=openimages backbone=... "
                        f"--out {path}` or set dataset.embeddings")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                ids, emb = npz["image_ids"], npz["embeddings"]
        elif path.suffix == ".parquet":
            table = pq.read_table(path, columns=["ImageID", "embedding"])
            ids = table.column("ImageID").to_numpy(zero_copy_only=False)
            column = table.column("embedding").combine_chunks()
            emb = column.flatten().to_numpy().reshape(len(column), -1)
        else:
            raise DataError(f"embeddings file {path} must be .npz or .parquet")
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"cannot read {path}: an .npz needs arrays image_ids and embeddings, a "
                        f".parquet columns ImageID and embedding ({exc})") from exc
    ids = np.asarray(ids, dtype=str)
    if emb.ndim != 2 or len(emb) != len(ids):
        raise DataError(f"{path}: embeddings must be (n, d) with one row per ImageID, got "
                        f"{emb.shape} for {len(ids)} ids")
    if len(np.unique(ids)) != len(ids):
        raise DataError(f"{path}: ImageIDs must be unique")
    return ids, emb


@register_dataset("openimages_features")
def load_openimages_features(embeddings: str | None = None, root: str = "data/openimages",
                             classes: Sequence[str] | None = None, top_k: Count | None = 20,
                             pool_split: str = "train", test_split: str = "validation",
                             max_pool: Count | None = None, max_test: Count | None = None,
                             val_size: NonNegative = 0, split_seed: NonNegative = 0,
                             manifest_dir: str | None = None) -> PoolData:
    """An Open Images subset as embedding vectors; only images with an embedding count."""
    if not embeddings:
        raise ConfigError("dataset=openimages_features needs dataset.embeddings=/path/to/file "
                          "(.npz with image_ids, embeddings; see scripts/extract_features.py)")
    path = Path(embeddings).expanduser().resolve()
    emb_ids, emb = read_embeddings(path)
    order = np.argsort(emb_ids)
    sorted_ids = emb_ids[order]
    spec = subset_spec(classes, top_k, pool_split, test_split, max_pool, max_test, path)
    table, class_table = load_or_build_manifest(Path(root).expanduser(), spec,
                                                embedding_filter(sorted_ids), manifest_dir)
    by_role = _targets_by_role(table, len(class_table))
    rows = {}
    for role, (ids, _) in by_role.items():
        pos = np.minimum(np.searchsorted(sorted_ids, ids), max(len(sorted_ids) - 1, 0))
        if len(ids) and not np.array_equal(sorted_ids[pos], ids):
            raise DataError(f"{int((sorted_ids[pos] != ids).sum())} {role} images of the "
                            f"manifest have no row in {path}; delete the manifest to rebuild it")
        rows[role] = order[pos]

    def make(role: str, index: np.ndarray) -> EmbeddingRows:
        return EmbeddingRows(emb, rows[role], by_role[role][1], index)

    info = DatasetInfo(name="openimages_features", task="multilabel",
                       num_classes=len(class_table), input_shape=(int(emb.shape[1]),))
    test_targets = by_role["test"][1]
    return assemble(info, lambda index, train: make("pool", index), by_role["pool"][1],
                    make("test", np.arange(len(test_targets))), test_targets,
                    val_size=val_size, split_seed=split_seed)
