"""Open Images subsets: from the official CSVs to a Parquet manifest, built once.

Files read under ``root`` (from https://storage.googleapis.com/openimages/web/download_v6.html):

- class names: ``oidv6-class-descriptions.csv`` (header ``LabelName,DisplayName``; also
  the v7 file and the 600-class ``class-descriptions-boxable.csv``, which has no header);
- human-verified image-level labels per split, columns ``ImageID,Source,LabelName,
  Confidence``: ``oidv6-<split>-annotations-human-imagelabels.csv`` (train),
  ``<split>-annotations-human-imagelabels.csv`` (validation, test) or the boxable subset
  ``<split>-annotations-human-imagelabels-boxable.csv``. Confidence 1 is a verified
  positive, 0 a verified negative.

A subset is: the chosen classes (a list of display names or label ids, or the ``top_k``
classes with the most verified positives in the pool split), the images of each split
with at least one verified positive among them (and an available image or embedding),
taken in ImageID order (IDs are random hex, so this is a fixed pseudo-random sample) up
to a cap per split. Targets are multi-hot over the chosen classes: verified negatives and
unverified classes both count as 0 (the usual simplification; Open Images' own
evaluation ignores unverified pairs).

The manifest (``ImageID, role, split, labels``, the class table in the file's metadata)
is named by a hash of these choices, so a config always finds its own manifest and
concurrent sweep jobs never rebuild it once it exists; it is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alharness.errors import ConfigError, DataError

log = logging.getLogger("alharness")

DOWNLOAD_PAGE = "https://storage.googleapis.com/openimages/web/download_v6.html"
CLASS_FILES = ("oidv7-class-descriptions.csv", "oidv6-class-descriptions.csv",
               "class-descriptions.csv", "class-descriptions-boxable.csv")
ROLES = ("pool", "test")

#: ``keep(split, image_ids)`` → bool mask of the images that can be used (e.g. have a JPEG).
KeepFilter = Callable[[str, np.ndarray], np.ndarray]


def label_files(split: str) -> tuple[str, ...]:
    """Accepted names of a split's human-verified image-level label file, preferred first."""
    return (f"oidv7-{split}-annotations-human-imagelabels.csv",
            f"oidv6-{split}-annotations-human-imagelabels.csv",
            f"{split}-annotations-human-imagelabels.csv",
            f"{split}-annotations-human-imagelabels-boxable.csv")


def find_file(root: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DataError(f"Open Images {what} not found: expected one of {', '.join(names)} under "
                    f"{root}/; download it from {DOWNLOAD_PAGE} or set dataset.root")


@dataclass(frozen=True)
class SubsetSpec:
    """Everything that decides a subset's content (and so its manifest's name)."""

    classes: tuple[str, ...] | None = None  # display names or label ids; None → top_k
    top_k: int | None = 20
    pool_split: str = "train"
    test_split: str = "validation"
    max_pool: int | None = None
    max_test: int | None = None
    source: str = "images"  # what an image needs to be usable: "images" or "embeddings:<path>"

    def __post_init__(self) -> None:
        if self.classes is None and not self.top_k:
            raise ConfigError("Open Images: set dataset.classes (names or label ids) or "
                              "dataset.top_k (the K most frequent classes)")
        if self.top_k is not None and self.classes is None and self.top_k < 1:
            raise ConfigError(f"dataset.top_k={self.top_k} must be ≥ 1")
        for cap in (self.max_pool, self.max_test):
            if cap is not None and cap < 1:
                raise ConfigError("dataset.max_pool and dataset.max_test must be ≥ 1 or null")

    def split(self, role: str) -> str:
        return self.pool_split if role == "pool" else self.test_split

    def cap(self, role: str) -> int | None:
        return self.max_pool if role == "pool" else self.max_test

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def read_class_descriptions(path: Path) -> dict[str, str]:
    """LabelName → DisplayName, with or without the header row."""
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(
            column_names=["LabelName", "DisplayName"]), convert_options=pacsv.ConvertOptions(
            column_types={"LabelName": pa.string(), "DisplayName": pa.string()}))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read {path} as LabelName,DisplayName CSV: {exc}") from exc
    names = dict(zip(table["LabelName"].to_pylist(), table["DisplayName"].to_pylist(),
                     strict=True))
    names.pop("LabelName", None)  # the header row of the oidv6/v7 files
    return names


def iter_positives(path: Path, wanted: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Stream (ImageID, LabelName) of verified positives (Confidence 1), optionally only
    those of ``wanted`` labels; memory stays bounded on the 9M-image train file."""
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 26),
                                convert_options=pacsv.ConvertOptions(
                                    include_columns=["ImageID", "LabelName", "Confidence"],
                                    column_types={"ImageID": pa.string(),
                                                  "LabelName": pa.string(),
                                                  "Confidence": pa.float32()}))
        value_set = pa.array(list(wanted), pa.string()) if wanted is not None else None
        for batch in reader:
            mask = pc.equal(batch.column("Confidence"), 1.0)
            if value_set is not None:
                mask = pc.and_(mask, pc.is_in(batch.column("LabelName"), value_set=value_set))
            yield pa.Table.from_batches([batch]).filter(mask).select(["ImageID", "LabelName"])
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read {path} as an Open Images label CSV with columns "
                        f"ImageID,Source,LabelName,Confidence: {' '.join(str(exc).split())}") from exc


def choose_classes(spec: SubsetSpec, names: dict[str, str], pool_labels: Path
                   ) -> list[tuple[str, str]]:
    """[(LabelName, DisplayName)] in class-index order."""
    if spec.classes is not None:
        by_name: dict[str, list[str]] = {}
        for label, display in names.items():
            by_name.setdefault(display.casefold(), []).append(label)
        chosen = []
        for entry in spec.classes:
            if entry in names:
                chosen.append(entry)
                continue
            matches = by_name.get(str(entry).casefold(), [])
            if len(matches) != 1:
                problem = "is ambiguous" if matches else "is not a class name or label id"
                hint = f" (label ids {', '.join(matches)})" if matches else ""
                raise ConfigError(f"Open Images class {entry!r} {problem}{hint}; list label "
                                  "ids such as /m/01yrx in dataset.classes")
            chosen.append(matches[0])
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"dataset.classes names a class twice: {list(spec.classes)}")
    else:
        counts: Counter[str] = Counter()
        for table in iter_positives(pool_labels):
            vc = pc.value_counts(table.column("LabelName")).to_pylist()
            counts.update({row["values"]: row["counts"] for row in vc})
        if len(counts) < spec.top_k:
            raise ConfigError(f"dataset.top_k={spec.top_k} but only {len(counts)} classes have "
                              f"verified positives in {pool_labels.name}; lower it")
        chosen = [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                  [: spec.top_k]]
    return [(label, names.get(label, label)) for label in chosen]


def _split_labels(path: Path, labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique ImageIDs with a positive among ``labels``, and their class indices as
    CSR (offsets, values)."""
    chunks = list(iter_positives(path, labels))
    table = pa.concat_tables(chunks) if chunks else None
    if table is None or table.num_rows == 0:
        return np.array([], dtype=str), np.zeros(1, np.int64), np.array([], np.int32)
    ids = np.asarray(table.column("ImageID").to_numpy(zero_copy_only=False), dtype=str)
    cls = pc.index_in(table.column("LabelName"), value_set=pa.array(labels)).to_numpy(
        zero_copy_only=False).astype(np.int32)
    uniq, image = np.unique(ids, return_inverse=True)
    pairs = np.unique(image.astype(np.int64) * len(labels) + cls)  # sorted, duplicates dropped
    image, cls = pairs // len(labels), (pairs % len(labels)).astype(np.int32)
    offsets = np.searchsorted(image, np.arange(len(uniq) + 1))
    return uniq, offsets, cls


def _take(ids: np.ndarray, split: str, cap: int | None, keep: KeepFilter | None,
          chunk: int = 4096) -> np.ndarray:
    """Positions of the first ``cap`` usable images in ID order (all usable if no cap)."""
    taken: list[np.ndarray] = []
    count = 0
    for start in range(0, len(ids), chunk):
        block = np.arange(start, min(start + chunk, len(ids)))
        if keep is not None:
            block = block[keep(split, ids[block])]
        if cap is not None:
            block = block[: cap - count]
        taken.append(block)
        count += len(block)
        if cap is not None and count >= cap:
            break
    return np.concatenate(taken) if taken else np.array([], dtype=np.int64)


def build_manifest(root: Path, spec: SubsetSpec, keep: KeepFilter | None) -> pa.Table:
    """The subset's manifest as an Arrow table (class table in its schema metadata)."""
    names = read_class_descriptions(find_file(root, CLASS_FILES, "class descriptions"))
    files = {role: find_file(root, label_files(spec.split(role)),
                             f"{spec.split(role)} image labels") for role in ROLES}
    classes = choose_classes(spec, names, files["pool"])
    labels = [label for label, _ in classes]
    parts = []
    for role in ROLES:
        split = spec.split(role)
        ids, offsets, values = _split_labels(files[role], labels)
        rows = _take(ids, split, spec.cap(role), keep)
        if len(rows) == 0:
            raise DataError(f"Open Images {split}: none of the {len(ids)} images with a verified "
                            f"positive among the {len(labels)} chosen classes is usable "
                            f"(needs: {spec.source}); check dataset.root={root}, the classes, "
                            f"and that {root / split}/<ImageID>.jpg or the embeddings exist")
        lengths = offsets[rows + 1] - offsets[rows]
        new_offsets = np.concatenate([[0], np.cumsum(lengths)])
        within = np.arange(new_offsets[-1]) - np.repeat(new_offsets[:-1], lengths)
        flat = values[np.repeat(offsets[rows], lengths) + within]  # the CSR rows `rows`
        parts.append(pa.table({
            "ImageID": pa.array(ids[rows], pa.string()),
            "role": pa.array([role] * len(rows), pa.string()),
            "split": pa.array([split] * len(rows), pa.string()),
            "labels": pa.ListArray.from_arrays(pa.array(new_offsets, pa.int32()),
                                               pa.array(flat, pa.int32())),
        }))
        log.info("Open Images %s (%s): %d images", role, split, len(rows))
    meta = {"classes": classes, "spec": asdict(spec), "version": 1}
    return pa.concat_tables(parts).replace_schema_metadata(
        {"alharness": json.dumps(meta)})


def manifest_path(root: Path, spec: SubsetSpec, manifest_dir: str | None = None) -> Path:
    folder = Path(manifest_dir).expanduser() if manifest_dir else root / "manifests"
    return folder / f"openimages-{spec.key()}.parquet"


def load_or_build_manifest(root: str | Path, spec: SubsetSpec, keep: KeepFilter | None,
                           manifest_dir: str | None = None) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Read the subset's manifest, building and writing it first if it does not exist."""
    root = Path(root).expanduser()
    path = manifest_path(root, spec, manifest_dir)
    if not path.is_file():
        table = build_manifest(root, spec, keep)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, path)  # atomic: concurrent jobs never read a half-written file
        except OSError as exc:
            raise DataError(f"cannot write the Open Images manifest {path} ({exc}); set "
                            "dataset.manifest_dir to a writable folder") from exc
        log.info("wrote Open Images manifest %s", path)
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"alharness", b"{}"))
    if "classes" not in meta:
        raise DataError(f"{path} is not an alharness Open Images manifest; delete it")
    return table, [tuple(c) for c in meta["classes"]]


def multi_hot(labels: pa.ChunkedArray | pa.ListArray, num_classes: int) -> np.ndarray:
    """uint8 (n, num_classes) 0/1 matrix from a list<int> column of class indices."""
    arr = labels.combine_chunks() if isinstance(labels, pa.ChunkedArray) else labels
    lengths = np.diff(arr.offsets.to_numpy())
    values = arr.flatten().to_numpy()  # respects slicing, unlike .values
    out = np.zeros((len(arr), num_classes), dtype=np.uint8)
    out[np.repeat(np.arange(len(arr)), lengths), values] = 1
    return out
