"""Graph average-linkage HAC against exact HAC, and its scaling.

    python scripts/bench_hac.py                                  # mixture + digits, 20,000 points
    python scripts/bench_hac.py --data mixture --n 20000 --dim 64 --sizes 5 10 20
    python scripts/bench_hac.py --npz embeddings.npz --outlier   # any X (n, d), plus a far point
    python scripts/bench_hac.py --scale 1000000 2000000          # graph backend alone, d = 128
    python scripts/bench_hac.py --scale 10000000                 # the paper's pool size

Agreement rows: the exact dendrogram (`alharness.ops.hac_exact.exact_merges`, equal to
SciPy's ``linkage(method="average")``) gives ε for each mean cluster size; the graph backend
(k = ``--k`` neighbours + ``--far`` far candidates, `alharness.ops.hac`) is cut at that
same ε and compared by ARI/NMI. ``own_eps`` is the graph backend's own ε for the target
size, relative to exact's (inf: above 1.25 × exact's, where the graph run stops; its
``time_s`` is the graph and the merges up to there). Data: ``mixture`` is `alharness.data.mixture.embedding_mixture`
(overlapping anisotropic heavy-tailed components: continuous, varying density);
``digits`` embeds augmented copies of scikit-learn's digits (random rotation ±7.5°, scale
±10 %, shift, pixel noise) with the default model (small CNN, trained 30 epochs on the
digits pool), 128-d penultimate layer. ``--outlier`` adds one point far from everything
(the pool's max + 10 × its range in every coordinate); ARI/NMI are then over the other
points, and ``ari_clean`` compares each backend's partition of them with its own partition
of the pool without the outlier, at the same ε.

Scaling rows: the mixture at ``--dim`` for the graph backend alone, target mean size 10,
split into the graph (kNN + far candidates) and HAC seconds; ``cpu_s`` is the process's
CPU time (both threads), robust to a loaded machine.

Measured tables (with data, load and commands): docs/strategies.md, Cluster-Margin.

Every measurement runs in a fresh subprocess (`alharness.bench.run_row`), so
``peak_mb`` is that measurement's own peak RSS, input included (the data are made in a
worker too: on Linux a child's peak RSS starts at its parent's size when it forked).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from alharness.bench import peak_rss_mb, run_row  # noqa: E402

AGREE = ("data", "n", "dim", "size", "backend", "eps", "own_eps", "clusters", "largest",
         "ari", "nmi", "ari_clean", "time_s", "peak_mb")
SCALE = ("n", "dim", "k", "far", "graph_s", "hac_s", "total_s", "cpu_s", "peak_mb",
         "pairs_per_n", "dists_per_n", "clusters", "largest")


def digits_embeddings(n: int, seed: int = 0, epochs: int = 30) -> np.ndarray:
    """Penultimate-layer embeddings (the default small CNN, trained on the digits pool) of
    ``n`` randomly rotated, scaled, shifted and noised digit images."""
    import torch
    import torch.nn.functional as F

    from alharness.data.digits import load_digits
    from alharness.models.base import build_backbone
    from alharness.training.trainer import TrainerConfig, train

    torch.manual_seed(seed)
    data = load_digits()
    model = build_backbone({"name": "small_cnn"}, data.info)
    pool = np.arange(len(data.pool_targets))
    train(model, data.pool_train, pool, "multiclass", TrainerConfig(epochs=epochs, amp=False),
          seed, torch.device("cpu"))
    model.eval()
    images = torch.stack([data.pool_eval[int(i)][0] for i in pool])
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(images), (n,), generator=g)
    angle = (torch.rand(n, generator=g) - 0.5) * (np.pi / 12)
    scale = 1 + (torch.rand(n, generator=g) - 0.5) * 0.2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.cos(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * scale
    theta[:, 0, 1] = -theta[:, 1, 0]
    theta[:, :, 2] = (torch.rand(n, 2, generator=g) - 0.5) * 0.5
    out = []
    with torch.no_grad():
        for s in range(0, n, 4096):
            batch = images[pick[s:s + 4096]]
            grid = F.affine_grid(theta[s:s + 4096], batch.shape, align_corners=False)
            batch = F.grid_sample(batch, grid, align_corners=False, padding_mode="border")
            out.append(model.features(batch + 0.1 * torch.randn(batch.shape, generator=g)))
    return torch.cat(out).numpy().astype(np.float32)


def make_data(kind: str, n: int, dim: int, seed: int, outlier: bool) -> np.ndarray:
    if kind == "mixture":
        from alharness.data.mixture import embedding_mixture

        x = embedding_mixture(n, dim, seed=seed)[0]
    elif kind == "digits":
        x = digits_embeddings(n, seed)
    else:
        x = np.load(kind)["X"].astype(np.float32)
        x = x[:n] if n else x
    if outlier:
        far = x.max(axis=0) + 10.0 * (x.max(axis=0) - x.min(axis=0))
        x = np.vstack([x, far[None].astype(x.dtype)])
    return np.ascontiguousarray(x)


def exact_worker(x: np.ndarray, sizes: list[float], eps: list[float] | None) -> dict:
    """Exact labels at ``eps`` (default: the exact ε of each size), from one exact
    dendrogram (`hac_exact.exact_merges`)."""
    from alharness.ops.dendrogram import cut, threshold_for_mean_size
    from alharness.ops.hac_exact import exact_merges

    start = time.perf_counter()
    merges = exact_merges(x)
    eps = eps or [threshold_for_mean_size(merges, s) for s in sizes]
    labels = [cut(merges, e).tolist() for e in eps]
    return {"backend": "exact", "eps": eps, "labels": labels,
            "time_s": time.perf_counter() - start}


def graph_worker(x: np.ndarray, sizes: list[float], eps: list[float], k: int,
                 far: int) -> dict:
    """Graph-backend labels at the exact ε of each size, and its own ε per size."""
    from alharness.ops.hac import cut, graph_merges, neighbour_graph, threshold_for_mean_size

    start = time.perf_counter()
    graph = neighbour_graph(x, k, far=far)
    merges = graph_merges(x, graph.ids, graph.dists, max_height=1.25 * max(eps))
    labels = [cut(merges, e).tolist() for e in eps]
    own = [threshold_for_mean_size(merges, s) for s in sizes]
    return {"backend": "graph", "eps": eps, "own_eps": own, "labels": labels,
            "time_s": time.perf_counter() - start}


def scale_worker(n: int, dim: int, k: int, far: int, seed: int) -> dict:
    from alharness.data.mixture import embedding_mixture
    from alharness.ops.hac import (
        cut,
        graph_merges,
        merges_needed,
        neighbour_graph,
        threshold_for_mean_size,
    )

    x = embedding_mixture(n, dim, seed=seed)[0]
    cpu, t0 = time.process_time(), time.perf_counter()
    graph = neighbour_graph(x, k, far=far)
    t1 = time.perf_counter()
    merges = graph_merges(x, graph.ids, graph.dists, target_merges=merges_needed(n, 10))
    t2 = time.perf_counter()
    labels = cut(merges, threshold_for_mean_size(merges, 10))
    sizes = np.bincount(labels)
    return {"n": n, "dim": dim, "k": k, "far": far, "graph_s": round(t1 - t0, 1),
            "hac_s": round(t2 - t1, 1), "total_s": round(t2 - t0, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "peak_mb": round(peak_rss_mb()),
            "pairs_per_n": round(merges.pairs / n, 1),
            "dists_per_n": round(merges.distances / n), "clusters": len(sizes),
            "largest": int(sizes.max())}


def agreement_rows(args: argparse.Namespace, kind: str, tmp: Path) -> list[dict]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    path = tmp / "x.npy"  # made in a worker: a child's peak RSS starts at its parent's
    run_row([sys.executable, __file__, "--worker", "data", "--worker-data", str(path),
             "--data", kind, "--n", str(args.n), "--dim", str(args.dim),
             "--seed", str(args.seed), *(["--outlier"] if args.outlier else [])])
    x = np.load(path)
    common = [sys.executable, __file__, "--worker-data", str(path), "--sizes",
              *map(str, args.sizes), "--k", str(args.k), "--far", str(args.far)]
    exact = run_row([*common, "--worker", "exact"])
    graph = run_row([*common, "--worker", "graph", "--eps", *map(str, exact["eps"])])
    keep = slice(0, len(x) - 1) if args.outlier else slice(None)
    clean = {}  # each backend without the outlier, at the same ε
    if args.outlier:
        np.save(path, x[keep])
        clean = {run["backend"]: run_row([*common, "--worker", run["backend"], "--eps",
                                          *map(str, exact["eps"])])
                 for run in (exact, graph)}
    name = Path(kind).stem + ("+outlier" if args.outlier else "")
    rows = []
    for i, size in enumerate(args.sizes):
        truth = np.asarray(exact["labels"][i])[keep]
        for run in (exact, graph):
            labels = np.asarray(run["labels"][i])[keep]
            counts = np.bincount(np.unique(labels, return_inverse=True)[1])
            rows.append({
                "data": name, "n": len(x), "dim": x.shape[1], "size": size,
                "backend": run["backend"], "eps": round(exact["eps"][i], 4),
                "own_eps": round(run.get("own_eps", exact["eps"])[i] / exact["eps"][i], 4),
                "clusters": len(counts), "largest": int(counts.max()),
                "ari": round(adjusted_rand_score(truth, labels), 3),
                "ari_clean": (round(adjusted_rand_score(
                    clean[run["backend"]]["labels"][i], labels), 3) if clean else ""),
                "nmi": round(normalized_mutual_info_score(truth, labels), 3),
                "time_s": round(run["time_s"], 1), "peak_mb": round(run["peak_mb"])})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=None,
                        help="mixture, digits, or .npz paths holding X (default: mixture "
                             "and digits, unless --npz is given)")
    parser.add_argument("--npz", nargs="+", default=[], help="more .npz files holding X")
    parser.add_argument("--n", type=int, default=20_000, help="points (npz: first n; 0 = all)")
    parser.add_argument("--dim", type=int, default=None,
                        help="mixture dimension (default 64; 128 for --scale)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[5, 10, 20],
                        help="target mean cluster sizes")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--far", type=int, default=None, help="far candidates (default: hac.FAR)")
    parser.add_argument("--outlier", action="store_true", help="add one far point")
    parser.add_argument("--scale", type=int, nargs="+", default=[],
                        help="scaling rows for these pool sizes (graph backend alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--worker", choices=["data", "exact", "graph", "scale"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-data", help=argparse.SUPPRESS)
    parser.add_argument("--eps", type=float, nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.far is None:
        from alharness.ops.hac import FAR

        args.far = FAR
    if args.dim is None:
        args.dim = 128 if args.scale or args.worker == "scale" else 64
    if args.data is None:
        args.data = [] if args.npz else ["mixture", "digits"]
    if args.worker:
        if args.worker == "data":
            x = make_data(args.data[0], args.n, args.dim, args.seed, args.outlier)
            np.save(args.worker_data, x)
            row = {"n": len(x)}
        elif args.worker == "scale":
            row = scale_worker(args.n, args.dim, args.k, args.far, args.seed)
        else:
            x = np.load(args.worker_data)
            row = (exact_worker(x, args.sizes, args.eps) if args.worker == "exact"
                   else graph_worker(x, args.sizes, args.eps, args.k, args.far))
            row["peak_mb"] = peak_rss_mb()
        print(json.dumps(row))
        return 0

    def show(columns: tuple[str, ...], row: dict) -> None:
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(" ".join(f"{row.get(c, '')!s:>11}" for c in columns), flush=True)

    if args.scale:
        if not args.json:
            show(SCALE, dict(zip(SCALE, SCALE, strict=True)))
        for n in args.scale:
            show(SCALE, run_row([sys.executable, __file__, "--worker", "scale", "--n", str(n),
                                    "--dim", str(args.dim), "--k", str(args.k),
                                    "--far", str(args.far), "--seed", str(args.seed)]))
        return 0
    if not args.json:
        show(AGREE, dict(zip(AGREE, AGREE, strict=True)))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in [*args.data, *args.npz]:
            for row in agreement_rows(args, kind, Path(tmp)):
                show(AGREE, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
