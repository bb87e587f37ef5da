"""Download torchvision datasets into a root folder, in the layout the loaders read.

    python scripts/prepare_data.py cifar10 cifar100 svhn --root data/
    python scripts/prepare_data.py all --root /shared/datasets

Run it once on a machine with internet (e.g. a login node), then point runs at the
folder with ``dataset.root=...``. torchvision verifies the official MD5 checksums;
datasets already present are left alone. Open Images is not downloaded here (hundreds
of GB): see ``scripts/prepare_openimages.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from alharness.data.files import DOWNLOADS, ensure_files
    from alharness.errors import DataError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"datasets to fetch: {', '.join(sorted(DOWNLOADS))} or all")
    parser.add_argument("--root", type=Path, default=Path("data"),
                        help="folder to download into (dataset.root); default data/")
    args = parser.parse_args(argv)
    names = sorted(DOWNLOADS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in DOWNLOADS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {sorted(DOWNLOADS)} or all")
    failed = 0
    for name in names:
        try:
            paths = ensure_files(DOWNLOADS[name], args.root, download=True)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        print(f"{name}: ready ({len(paths)} files under {args.root}/)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
