"""Build an Open Images subset manifest once, before runs (or a sweep) use it.

    python scripts/prepare_openimages.py --root data/openimages --top-k 100 --max-pool 200000
    python scripts/prepare_openimages.py --root data/openimages --classes Cat,Dog,/m/0k4j
    python scripts/prepare_openimages.py --root data/openimages --top-k 1000 \\
        --embeddings data/openimages/resnet101.npz      # for dataset=openimages_features

It reads the official CSVs under --root (class descriptions and the human-verified
image-level labels of both splits), keeps images with a verified positive among the
chosen classes that have a JPEG at <root>/<split>/<ImageID>.jpg (or, with --embeddings,
a row in that file), and writes the Parquet manifest where a run with the same options
looks for it; it prints the overrides that select it. Runs build the manifest themselves
when it is missing; building it here first keeps the parallel jobs of a sweep from all
scanning the multi-GB label CSVs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from alharness.data.openimages import (
        embedding_filter,
        jpeg_filter,
        read_embeddings,
        subset_spec,
    )
    from alharness.data.openimages_manifest import load_or_build_manifest, manifest_path
    from alharness.errors import HarnessError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/openimages"),
                        help="folder with the CSVs and <split>/ image folders (dataset.root)")
    parser.add_argument("--classes", default=None,
                        help="comma-separated display names or label ids (dataset.classes)")
    parser.add_argument("--top-k", type=int, default=20,
                        help="without --classes: the K most frequent classes (dataset.top_k)")
    parser.add_argument("--pool-split", default="train")
    parser.add_argument("--test-split", default="validation")
    parser.add_argument("--max-pool", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="build the manifest of dataset=openimages_features for this file")
    parser.add_argument("--manifest-dir", default=None, help="default <root>/manifests")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    root = args.root.expanduser()
    try:
        if args.embeddings is not None:
            path = args.embeddings.expanduser().resolve()
            keep = embedding_filter(np.sort(read_embeddings(path)[0]))
        else:
            path, keep = None, jpeg_filter(root)
        spec = subset_spec(args.classes, args.top_k, args.pool_split, args.test_split,
                           args.max_pool, args.max_test, path)
        table, classes = load_or_build_manifest(root, spec, keep, args.manifest_dir)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    roles = table.column("role").to_pylist()
    print(f"manifest: {manifest_path(root, spec, args.manifest_dir)}")
    print(f"pool: {roles.count('pool')} images ({args.pool_split}), "
          f"test: {roles.count('test')} images ({args.test_split}), {len(classes)} classes:")
    for index, (label, name) in enumerate(classes):
        print(f"  {index:4d}  {label:<12s}  {name}")
    dataset = "openimages_features" if path else "openimages"
    overrides = [f"dataset={dataset}", f"dataset.root={root}"]
    if spec.classes:  # exactly as given: the manifest is named by the options as written
        overrides.append("'dataset.classes=[" + ",".join(f'"{c}"' for c in spec.classes) + "]'")
    else:
        overrides.append(f"dataset.top_k={args.top_k}")
    for key, value, default in (("pool_split", args.pool_split, "train"),
                                ("test_split", args.test_split, "validation"),
                                ("max_pool", args.max_pool, None),
                                ("max_test", args.max_test, None),
                                ("embeddings", path, None),
                                ("manifest_dir", args.manifest_dir, None)):
        if value != default:
            overrides.append(f"dataset.{key}={value}")
    print("use it with: python run.py " + " ".join(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
