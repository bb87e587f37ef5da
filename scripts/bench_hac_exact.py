"""Time and memory of exact average-linkage HAC: ours (NN-chains, no n² matrix) and the
dense libraries, with the agreement of each with SciPy.

    python scripts/bench_hac_exact.py --n 10000 20000 --dim 50 512
    python scripts/bench_hac_exact.py --n 50000 --dim 512 --backend ours
    python scripts/bench_hac_exact.py --npz embeddings.npz --backend ours scipy

The pool is an overlapping mixture of anisotropic Gaussians of log-uniform widths and a
decaying spectrum (continuous, varying density, not separated blobs), or the first array
of ``--npz``'s file (its first ``--n`` rows). Each row (n, dim, backend) runs in a fresh
subprocess, so ``peak_rss_mb`` is that row's own peak (the float32 pool included).
``seconds`` is the dendrogram (wall clock; ``cpu_s``: CPU time of all threads, which a
shared machine inflates less); ``ari_vs_scipy`` compares the flat clusters at mean size
``--target`` (each backend's own ε for it: the same cluster count) with SciPy's, when
SciPy ran on that pool. The dense backends (SciPy ``linkage(method="average")``,
fastcluster, scikit-learn ``AgglomerativeClustering``) hold the 8·n²/2-byte condensed
matrix (or more), so they are skipped above ``--max-dense-n``; fastcluster and
scikit-learn also when not installed. ``rows/n`` is ours' point rows computed per point
(1.00: the row cache never had to recompute one).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("ours", "scipy", "fastcluster", "sklearn")
COLUMNS = ("n", "dim", "backend", "seconds", "cpu_s", "peak_rss_mb", "ari_vs_scipy", "clusters",
           "rows/n")


def mixture(n: int, dim: int, seed: int = 0, components: int = 30):
    """Overlapping anisotropic Gaussians: random rotations, widths log-uniform in
    [0.3, 3], a 1/√(1+i) spectrum, Dirichlet weights. Float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(components, dim))
    widths = np.exp(rng.uniform(np.log(0.3), np.log(3.0), components))
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(dim))
    spectrum *= np.sqrt(dim / (spectrum**2).sum())
    which = rng.choice(components, size=n, p=rng.dirichlet(np.ones(components)))
    x = np.empty((n, dim), dtype=np.float32)
    for k in range(components):
        idx = np.flatnonzero(which == k)
        rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        noise = rng.standard_normal((len(idx), dim)) * spectrum
        x[idx] = centres[k] + widths[k] * noise @ rotation.T
    return x


def load_pool(args: argparse.Namespace):
    import numpy as np

    if args.npz:
        with np.load(args.npz) as data:
            x = data[data.files[0]]
        return np.ascontiguousarray(x.reshape(len(x), -1)[:args.n], dtype=np.float32)
    return mixture(args.n, args.dim, args.seed)


def run_one(args: argparse.Namespace) -> dict:
    """Cluster the pool with one backend; labels at mean size ``--target`` go to a file."""
    import numpy as np

    from alharness.ops.dendrogram import Merges, cut, threshold_for_mean_size

    x = load_pool(args)
    n = len(x)
    start, cpu = time.perf_counter(), _cpu_seconds()
    rows = None
    if args.backend == "ours":
        from alharness.ops.hac_exact import exact_merges

        merges = exact_merges(x, cache_mb=args.cache_mb)
        rows = merges.point_rows / n
    elif args.backend in ("scipy", "fastcluster"):
        if args.backend == "scipy":
            from scipy.cluster.hierarchy import linkage
        else:
            from fastcluster import linkage
        z = linkage(x.astype(np.float64), method="average")
        merges = _from_linkage_matrix(z, n, Merges)
    else:
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=max(1, int(n // args.target)),
                                        linkage="average").fit(x)
        labels = model.labels_
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    if args.backend != "sklearn":
        labels = cut(merges, threshold_for_mean_size(merges, args.target))
    np.save(args.labels_out, labels)
    return {"n": n, "dim": x.shape[1], "backend": args.backend, "seconds": round(seconds, 2),
            "cpu_s": round(cpu, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "clusters": int(len(np.unique(labels))),
            "rows/n": None if rows is None else round(rows, 2)}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _from_linkage_matrix(z, n: int, merges_type):
    """A SciPy linkage matrix as `Merges`: cluster n + i is named by one of its points."""
    import numpy as np

    name = np.concatenate([np.arange(n), np.empty(len(z), dtype=np.int64)])
    kept, absorbed = np.empty(len(z), dtype=np.int64), np.empty(len(z), dtype=np.int64)
    for i, (a, b) in enumerate(z[:, :2].astype(np.int64)):
        kept[i], absorbed[i] = name[a], name[b]
        name[n + i] = name[a]
    return merges_type(kept, absorbed, z[:, 2].astype(np.float64), n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--dim", type=int, nargs="+", default=[50])
    parser.add_argument("--backend", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--target", type=float, default=10.0, help="mean cluster size")
    parser.add_argument("--max-dense-n", type=int, default=30_000,
                        help="skip the n²-matrix backends above this pool size")
    parser.add_argument("--cache-mb", type=float, default=2048, help="ours' row cache")
    parser.add_argument("--npz", default=None, help="cluster this file's first array")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--labels-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.worker:
        args.n, args.dim, args.backend = args.n[0], args.dim[0], args.backend[0]
        print(json.dumps(run_one(args)))
        return 0
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from alharness.bench import RowError, run_row

    dims = [None] if args.npz else args.dim
    failed = 0
    if not args.json:
        print(" ".join(f"{c:>12}" for c in COLUMNS), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for dim in dims:
                scipy_labels = None
                for backend in sorted(args.backend, key=lambda b: b != "scipy"):
                    if backend != "ours" and n > args.max_dense_n:
                        continue
                    if backend in ("fastcluster", "sklearn") and not _installed(backend):
                        continue
                    out = Path(tmp) / f"{backend}-{n}-{dim}.npy"
                    cmd = [sys.executable, __file__, "--worker", "--n", str(n),
                           "--dim", str(dim or 0), "--backend", backend,
                           "--target", str(args.target), "--cache-mb", str(args.cache_mb),
                           "--seed", str(args.seed), "--labels-out", str(out)]
                    if args.npz:
                        cmd += ["--npz", args.npz]
                    try:
                        row = run_row(cmd)
                    except RowError as error:
                        failed += 1
                        print(f"{n:>12} {dim!s:>12} {backend:>12}  FAILED: {error}", flush=True)
                        continue
                    labels = np.load(out)
                    if backend == "scipy":
                        scipy_labels = labels
                    row["ari_vs_scipy"] = (None if scipy_labels is None else
                                           round(adjusted_rand_score(scipy_labels, labels), 4))
                    if args.json:
                        print(json.dumps(row), flush=True)
                    else:
                        print(" ".join(f"{row[c]!s:>12}" for c in COLUMNS), flush=True)
    return 1 if failed else 0


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
