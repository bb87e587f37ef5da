"""How diverse is ALFA-Mix's k-means pick? SSE reduction versus a uniform pick, and time.

    python scripts/bench_kmeans.py                       # mixture + digits embeddings, k = n/10
    python scripts/bench_kmeans.py --data mixture --n 100000 --dim 512 --k 5000
    python scripts/bench_kmeans.py --data file.npz --k 1000   # any (n, d) array "x" in an .npz

ALFA-Mix's diversity step (`alharness.ops.kmeans`) clusters the L2-normalised candidates
into k = batch clusters and picks the member nearest each centre. For a pick P the score
is SSE(P) = Σ over candidates of the squared distance to the nearest point of P, and

    reduction = 1 − SSE(method) / SSE(uniform)

with SSE(uniform) averaged over ``--uniform-draws`` uniformly random picks of k candidates.
``radius`` is the largest distance from a candidate to its nearest pick (uniform: mean
over the draws). ``seconds`` is wall time, ``cpu_seconds`` this process's CPU time (the
better measure on a shared machine). Rows:

- ``ours_kmeanspp``: `kmeans_nearest` with ``init=kmeanspp`` and at most
  ``--max-local-trials`` candidates per centre (the harness default, 8);
- ``ours_kmeanspp_sklearn_trials``: the same with scikit-learn's 2 + ⌊ln k⌋ candidates;
- ``ours_random``: `kmeans` with ``init=random`` (the harness before k-means++ seeding);
- ``sklearn_kmeanspp``: scikit-learn ``KMeans(n_clusters=k)`` with its default
  k-means++ (greedy, 2 + ln k trials per centre), Lloyd to convergence (≤ 300 iterations),
  ``n_init=1`` (as sklearn ≥ 1.4's ``"auto"``; the official code's pinned 0.23.1 ran 10
  and kept the best; ``--sklearn-n-init 10`` measures that);
- ``sklearn_random``: the same with ``init="random"``.

Every method's pick is the member nearest each of its centres (`nearest_to_centres`, the
official code's rule). Data (all seeded; ``--seed``):

- ``mixture``: an anisotropic Gaussian mixture with continuous, varying density —
  Dirichlet(0.5) component sizes, log-normal component scales, power-law spectra on random
  bases, means as far apart as the components are wide (they overlap), a shared offset (a
  cone, like ReLU features);
- ``digits_pca``/``digits_mlp``: scikit-learn's 1,797 handwritten digits, augmented to
  ``--n`` images (rotation ±15°, scale 0.9–1.1, shift ±1 px), as PCA-50 of the pixels or as
  the 256-d penultimate layer of the project's MLP trained for ``--epochs`` epochs on them.

Threads: ``--threads`` for BLAS, OpenMP and faiss (default 1: ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

COLUMNS = ("data", "n", "dim", "k", "method", "picks", "sse_reduction", "radius", "seconds",
           "cpu_seconds")


def mixture(n: int, dim: int, seed: int, components: int = 40) -> np.ndarray:
    """(n, dim) float32 anisotropic, overlapping Gaussian mixture of varying density."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, rng.dirichlet(np.full(components, 0.5)))
    spectrum = np.arange(1, dim + 1) ** -0.5
    spectrum *= np.sqrt(dim / (spectrum**2).sum())  # unit variance per coordinate on average
    means = rng.normal(size=(components, dim)) + rng.normal(size=dim) * 2.0
    parts = []
    for mean, count in zip(means, counts, strict=True):
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        scale = np.exp(rng.normal(0.0, 0.5))
        parts.append((rng.normal(size=(count, dim)) * spectrum * scale) @ basis.T + mean)
    x = np.concatenate(parts).astype(np.float32)
    return x[rng.permutation(n)]


def augmented_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64) float32 pixels in [0, 1] of randomly transformed digits, and their labels."""
    from scipy.ndimage import affine_transform
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(seed)
    source = rng.integers(len(bunch.target), size=n)
    angle = np.deg2rad(rng.uniform(-15, 15, n))
    zoom = rng.uniform(0.9, 1.1, n)
    shift = rng.uniform(-1, 1, (n, 2))
    out = np.empty((n, 64), dtype=np.float32)
    centre = np.array([3.5, 3.5])
    for i in range(n):
        c, s = np.cos(angle[i]) / zoom[i], np.sin(angle[i]) / zoom[i]
        matrix = np.array([[c, -s], [s, c]])
        offset = centre - matrix @ (centre + shift[i])
        image = affine_transform(bunch.images[source[i]] / 16.0, matrix, offset, order=1)
        out[i] = image.ravel()
    return out, bunch.target[source]


def digits_pca(n: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    pixels, _ = augmented_digits(n, seed)
    return PCA(50, random_state=seed).fit_transform(pixels).astype(np.float32)


def digits_mlp(n: int, seed: int, epochs: int) -> np.ndarray:
    """Penultimate embeddings of the project's MLP (one hidden layer of 256) after a brief
    training on the augmented digits themselves."""
    import torch

    from alharness.models.mlp import MLP

    pixels, labels = augmented_digits(n, seed)
    torch.manual_seed(seed)
    x, y = torch.from_numpy((pixels - pixels.mean()) / pixels.std()), torch.from_numpy(labels)
    model = MLP(64, 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(n).split(128):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        return model.features(x).numpy()


def load(name: str, args: argparse.Namespace) -> np.ndarray:
    if name == "mixture":
        return mixture(args.n, args.dim, args.seed)
    if name == "digits_pca":
        return digits_pca(args.n, args.seed)
    if name == "digits_mlp":
        return digits_mlp(args.n, args.seed, args.epochs)
    with np.load(name) as archive:
        return np.asarray(archive["x"] if "x" in archive else archive[archive.files[0]],
                          dtype=np.float32)


def nearest_pick_sq(x: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Squared distance from every row of ``x`` to its nearest row of ``x[picks]``."""
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x[picks]))
    return np.maximum(index.search(x, 1)[0][:, 0], 0.0).astype(np.float64)


def methods(args: argparse.Namespace) -> dict:
    """name -> function(x, k, seed) returning the picked rows."""
    from sklearn.cluster import KMeans

    from alharness.ops.kmeans import kmeans_nearest, nearest_to_centres

    def ours(init: str, max_trials: int | None = None):
        return lambda x, k, seed: kmeans_nearest(
            x, k, np.random.default_rng(seed), args.iters, init=init, max_trials=max_trials)

    def sklearn(init: str):
        def run(x, k, seed):
            fit = KMeans(n_clusters=k, init=init, n_init=args.sklearn_n_init,
                         random_state=seed).fit(x)
            return nearest_to_centres(x, fit.cluster_centers_.astype(np.float32))
        return run

    table = {"ours_kmeanspp": ours("kmeanspp", args.max_local_trials),
             "ours_kmeanspp_sklearn_trials": ours("kmeanspp"), "ours_random": ours("random"),
             "sklearn_kmeanspp": sklearn("k-means++"), "sklearn_random": sklearn("random")}
    return {name: table[name] for name in args.methods}


def bench(data: str, x: np.ndarray, k: int, args: argparse.Namespace) -> list[dict]:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(args.seed)
    uniform = [nearest_pick_sq(x, rng.choice(len(x), k, replace=False))
               for _ in range(args.uniform_draws)]
    sse_uniform = float(np.mean([u.sum() for u in uniform]))
    base = {"data": Path(data).name, "n": len(x), "dim": x.shape[1], "k": k}
    rows = [{**base, "method": "uniform", "picks": k, "sse_reduction": 0.0,
             "radius": float(np.mean([np.sqrt(u.max()) for u in uniform])), "seconds": 0.0,
             "cpu_seconds": 0.0}]
    for name, run in methods(args).items():
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        picks = run(x, k, args.seed)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - start_cpu
        d2 = nearest_pick_sq(x, picks)
        rows.append({**base, "method": name, "picks": len(picks),
                     "sse_reduction": 1.0 - d2.sum() / sse_uniform,
                     "radius": float(np.sqrt(d2.max())), "seconds": seconds,
                     "cpu_seconds": cpu})
    return rows


def _width(column: str) -> int:
    return {"method": 28, "data": 12}.get(column, 13)


def _cpu_seconds() -> float:
    """User + system time of this process, all threads: less sensitive to a loaded machine
    than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["mixture", "digits_pca", "digits_mlp"],
                        help="mixture, digits_pca, digits_mlp or .npz paths")
    parser.add_argument("--n", type=int, default=20_000, help="points (generated data)")
    parser.add_argument("--dim", type=int, default=128, help="mixture dimension")
    parser.add_argument("--k", type=int, nargs="+", default=None,
                        help="clusters = batch (default n/10)")
    parser.add_argument("--methods", nargs="+",
                        default=["ours_kmeanspp", "ours_kmeanspp_sklearn_trials", "ours_random",
                                 "sklearn_kmeanspp", "sklearn_random"])
    parser.add_argument("--iters", type=int, default=20, help="Lloyd iterations of ours")
    parser.add_argument("--max-local-trials", type=int, default=8,
                        help="ours_kmeanspp's cap on 2 + ln k (strategy.kmeans_max_local_trials)")
    parser.add_argument("--sklearn-n-init", type=int, default=1)
    parser.add_argument("--uniform-draws", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="MLP training (digits_mlp)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    from alharness.ops.kmeans_pp import greedy_kmeans_pp

    greedy_kmeans_pp(np.eye(4, dtype=np.float32), 2, np.random.default_rng(0))  # compile first
    print(" ".join(f"{c:>{_width(c)}}" for c in COLUMNS), flush=True)
    with threadpool_limits(args.threads):
        for data in args.data:
            x = load(data, args)
            for k in args.k or [len(x) // 10]:
                for row in bench(data, x, k, args):
                    print(" ".join(f"{row[c]:>{_width(c)}.4f}" if isinstance(row[c], float)
                                   else f"{row[c]!s:>{_width(c)}}" for c in COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
