"""Time one selection of any registered strategy on a seeded synthetic pool.

    python scripts/bench_selection.py --strategy coreset badge --n 100000 --dim 512 --batch 5000
    python scripts/bench_selection.py --strategy cluster_margin --n 1000000 --dim 128 \\
        --param km=10 --param target_cluster_size=10 --json

The pool is Gaussian blobs with groups of near-duplicates; the "model" is the Bayes
linear head of the blobs (`LinearHead.nearest_centre`), so probabilities, embeddings,
gradient embeddings and MC-dropout samples are all available without training. Each
(strategy, n) row runs in a fresh subprocess so ``peak_rss_mb`` is that row's own peak
(pool arrays included). ``prepare_s`` is `Strategy.prepare` (e.g. Cluster-Margin's
clustering), ``select_s`` is `Strategy.select`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

COLUMNS = ("strategy", "n", "dim", "classes", "batch", "prepare_s", "select_s", "peak_rss_mb")


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(text.lower(), text)


def run_one(args: argparse.Namespace) -> dict:
    """Build the pool, run prepare + select once, return the row."""
    import numpy as np
    import torch

    from alharness.data.synthetic import blob_centres, make_blobs
    from alharness.models.linear_head import LinearHead
    from alharness.strategies import STRATEGIES, SelectionContext, build_strategy, validate_picks
    from alharness.strategies.outputs import ArrayOutputs
    from alharness.training.trainer import TrainerConfig

    params = dict(p.split("=", 1) for p in args.param)
    strategy = build_strategy({"name": args.strategy, **{k: parse_value(v) for k, v in params.items()}})
    groups = args.n // 100 if args.duplicates else 0
    x, y, _, _ = make_blobs(args.n, args.dim, args.classes, args.seed, args.separation,
                            duplicate_groups=groups, duplicate_size=10)
    head = LinearHead.nearest_centre(blob_centres(args.dim, args.classes, args.seed,
                                                  args.separation),
                                     scale=args.temperature or 4.0 / args.dim)
    needs = STRATEGIES.get(args.strategy).needs
    mc = None
    with torch.no_grad():
        z = torch.from_numpy(x)
        probs = torch.cat([torch.softmax(head(c), 1) for c in z.split(65536)]).numpy()
        if "mc_probs" in needs:
            head.dropout.train()
            mc = np.stack([torch.cat([torch.softmax(head(c), 1) for c in z.split(65536)]).numpy()
                           for _ in range(args.mc_passes)])
            head.eval()
    rng = np.random.default_rng(args.seed)
    labelled = np.sort(rng.choice(args.n, size=args.labelled, replace=False))
    mask = np.ones(args.n, dtype=bool)
    mask[labelled] = False
    outputs = ArrayOutputs(probs, x, mc, head, inputs=x if "inputs" in needs else None)
    ctx = SelectionContext(labelled=labelled, unlabelled=np.flatnonzero(mask),
                           outputs=outputs, needs=frozenset(needs),
                           rng=rng, cache={}, task="multiclass", num_classes=args.classes,
                           cycle=0, pool_size=args.n, labelled_targets=y[labelled])
    addon = strategy.training_addon(ctx.cache)
    if addon is not None:  # built untrained on the head: the row times selection, not training
        addon.attach(head, torch.from_numpy(x[:1]), TrainerConfig())
        addon.detach()
    t0 = time.perf_counter()
    strategy.prepare(ctx)
    t1 = time.perf_counter()
    picks = validate_picks(strategy.select(ctx, args.batch), ctx, args.batch, args.strategy)
    t2 = time.perf_counter()
    assert len(picks) == min(args.batch, len(ctx.unlabelled))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"strategy": args.strategy, "n": args.n, "dim": args.dim, "classes": args.classes,
            "batch": args.batch, "prepare_s": round(t1 - t0, 3), "select_s": round(t2 - t1, 3),
            "peak_rss_mb": round(peak_mb, 1), **{k: v if isinstance(v, str) else round(v, 6) for k, v in ctx.diagnostics.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", nargs="+", default=["margin"],
                        help="registered names, or 'all'")
    parser.add_argument("--n", type=int, nargs="+", default=[10_000], help="pool sizes")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--labelled", type=int, default=1000, help="initial labelled points")
    parser.add_argument("--separation", type=float, default=1.0,
                        help="blob centre separation (low = many uncertain points)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="logit scale of the head (default 4/dim: the logit gaps grow like "
                             "dim, so a fixed scale makes every prediction one-hot at d=512)")
    parser.add_argument("--mc-passes", type=int, default=10)
    parser.add_argument("--no-duplicates", dest="duplicates", action="store_false")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="strategy parameter (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.worker:
        args.strategy, args.n = args.strategy[0], args.n[0]
        print(json.dumps(run_one(args)))
        return 0
    from alharness.bench import RowError, run_row

    if args.strategy == ["all"]:
        from alharness.strategies import STRATEGIES

        args.strategy = STRATEGIES.names()
    passthrough = list(argv if argv is not None else sys.argv[1:])
    failed = 0
    first = max(12, *map(len, args.strategy))  # the strategy column fits the longest name

    def line(cells: list) -> str:
        return " ".join(f"{c!s:>{first if i == 0 else 12}}" for i, c in enumerate(cells))

    if not args.json:
        print(line(COLUMNS), flush=True)
    for strategy in args.strategy:
        for n in args.n:
            cmd = [sys.executable, __file__, *_replace(passthrough, strategy, n), "--worker"]
            try:
                row = run_row(cmd)
            except RowError as error:
                failed += 1
                print(f"{line([strategy, n])}  FAILED: {error}", flush=True)
                continue
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(line([row[c] for c in COLUMNS]), flush=True)
    return 1 if failed else 0


def _replace(argv: list[str], strategy: str, n: int) -> list[str]:
    """argv with --strategy/--n narrowed to one value each."""
    out, skip = [], False
    for a in argv:
        if a in ("--strategy", "--n"):
            skip = True
            continue
        if skip and not a.startswith("--"):
            continue
        skip = False
        out.append(a)
    return [*out, "--strategy", strategy, "--n", str(n)]


if __name__ == "__main__":
    sys.exit(main())
