"""Embed a dataset with any configured backbone, for training only a head on the result.

    python scripts/extract_features.py dataset=openimages dataset.top_k=1000 \\
        backbone=resnet101 backbone.weights=/models/resnet101.pt --out data/oi/r101.parquet
    python scripts/extract_features.py dataset=cifar10 backbone=vit \\
        backbone.weights=/models/dino_vits16.pt dataset.image_size=224 --out cifar10_dino.npz

Arguments without ``--`` are Hydra overrides of ``configs/`` (the same groups as
``run.py``), so any registered backbone and dataset work; ``backbone.weights`` is a
local state dict (nothing is downloaded). Images go through the test transforms (no
augmentation); the embedding is the backbone's ``features(x)`` (its penultimate layer).

Output: for Open Images, ``image_ids`` + ``embeddings`` of the pool and test images
(``.npz``, or ``.parquet`` written batch by batch with columns ImageID, embedding), the
input of ``dataset=openimages_features``; for other datasets an ``.npz`` with ``X, y,
X_test, y_test``, the input of ``dataset=features``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=cifar10")
    parser.add_argument("--out", type=Path, required=True, help=".npz or .parquet to write")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--half", action="store_true", help="store float16 (half the size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from alharness.errors import HarnessError

    try:
        written = extract(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"wrote {written}")
    return 0


def extract(args: argparse.Namespace) -> str:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from alharness.config.compose import compose_once
    from alharness.config.schema import validate_config
    from alharness.data import load_dataset
    from alharness.errors import ConfigError
    from alharness.models import build_backbone
    from alharness.training.device import resolve_device
    from alharness.training.trainer import loader

    cfg = validate_config(compose_once(args.overrides)).values  # one-line errors
    dataset_cfg = dict(cfg["dataset"])
    if "val_size" in dataset_cfg:
        dataset_cfg["val_size"] = 0  # embed the whole training split
    data = load_dataset(dataset_cfg)
    model = build_backbone(cfg["backbone"], data.info)
    if not cfg["backbone"].get("weights"):
        logging.warning("backbone.weights is not set: these are embeddings of random weights")
    device = resolve_device(args.device)
    model.to(device).eval()
    image_ids = [getattr(ds, "image_ids", None) for ds in (data.pool_eval, data.test)]
    by_id = all(ids is not None for ids in image_ids)
    out = args.out.expanduser()
    if out.suffix not in (".npz", ".parquet") or (out.suffix == ".parquet" and not by_id):
        raise ConfigError(f"--out {out}: use .npz (or .parquet for Open Images)")
    out.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.float16 if args.half else np.float32

    def batches(dataset):
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            for x, _ in loader(dataset, None, args.batch_size, device, args.num_workers):
                yield model.features(x.to(device, non_blocking=True)).float().cpu().numpy()

    if out.suffix == ".parquet":  # streamed: memory stays one batch for any pool size
        writer = None
        for dataset, ids in zip((data.pool_eval, data.test), image_ids, strict=True):
            start = 0
            for z in batches(dataset):
                emb = pa.FixedSizeListArray.from_arrays(pa.array(z.astype(dtype).ravel()),
                                                        z.shape[1])
                table = pa.table({"ImageID": pa.array(ids[start:start + len(z)], pa.string()),
                                  "embedding": emb})
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
                start += len(z)
        if writer is not None:
            writer.close()
        return f"{out} ({sum(map(len, image_ids))} images)"
    pool, test = (np.concatenate(list(batches(ds))).astype(dtype)
                  for ds in (data.pool_eval, data.test))
    if by_id:
        np.savez(out, image_ids=np.concatenate(image_ids), embeddings=np.concatenate([pool, test]))
    else:
        np.savez(out, X=pool, y=data.pool_targets, X_test=test, y_test=data.test_targets)
    return f"{out} (pool {pool.shape}, test {test.shape})"


if __name__ == "__main__":
    sys.exit(main())
