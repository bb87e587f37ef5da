"""Does Cluster-Margin learn differently with the graph HAC than with exact HAC?

    python scripts/experiment_hac_backends.py                    # 5 seeds, results/hac_backends/
    python scripts/experiment_hac_backends.py --seeds 0 1 2 3 4 5 6 7 8 9 --out /tmp/hac

One experiment, run the way a user runs any comparison: a features dataset is written
(``--pool`` augmented copies of scikit-learn's digits for the pool, ``--test`` more for the
test set, drawn from disjoint source images so no test digit has a copy in the pool; 64
pixels per point, `alharness.data.augmented_digits`); then

    python run.py -m dataset=features dataset.path=<out>/features.npz backbone=mlp
        strategy=cluster_margin strategy.hac=exact,graph seeds=[...] budget.initial=...

clusters the MLP's embeddings of the whole pool once per run with each backend (a pool where
exact HAC runs in seconds), and ``python -m alharness.report <out>/runs`` draws the curves
and the win matrix. This script then prints, at every labelled count, both backends' mean ±
std test accuracy over seeds and the paired t-test of their per-seed difference (seeds
paired by seed value, two-sided), and the report's win-matrix cells. Nothing is pooled
across labelled counts. Re-running skips finished runs (the runner's resume).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_features(path: Path, pool: int, test: int, seed: int) -> None:
    """Pool and test copies of disjoint halves of scikit-learn's digits, as an .npz."""
    from alharness.data.augmented_digits import augmented_digits

    order = np.random.default_rng(seed).permutation(1797)
    x, y = augmented_digits(pool, seed, sources=order[:1400])
    x_test, y_test = augmented_digits(test, seed + 1, sources=order[1400:])
    np.savez(path, X=x, y=y, X_test=x_test, y_test=y_test)


def paired_table(rows):
    """Per labelled count: mean ± std of each backend, mean difference, paired t-test p."""
    import pandas as pd
    from scipy.stats import ttest_rel

    rows = rows.assign(hac=rows["variant"].str.extract(r"hac=(\w+)")[0])
    lines = []
    for labelled, group in rows.groupby("n_labelled", sort=True):
        wide = group.pivot_table(index="seed", columns="hac", values="metric").dropna()
        exact, graph = wide["exact"], wide["graph"]
        diff = graph - exact
        p = ttest_rel(graph, exact).pvalue if len(wide) > 1 and diff.std() > 0 else float("nan")
        lines.append({"labelled": labelled, "seeds": len(wide),
                      "exact": f"{exact.mean():.4f} ± {exact.std():.4f}",
                      "graph": f"{graph.mean():.4f} ± {graph.std():.4f}",
                      "graph-exact": f"{diff.mean():+.4f}", "p": round(float(p), 3)})
    return pd.DataFrame(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "hac_backends")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--test", type=int, default=2_000)
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("overrides", nargs="*", help="more run.py overrides")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    args.out.mkdir(parents=True, exist_ok=True)
    features = args.out / "features.npz"
    if not features.exists():
        write_features(features, args.pool, args.test, seed=0)
    runs, report = args.out / "runs", args.out / "report"
    seeds = ",".join(map(str, args.seeds))
    command = [sys.executable, str(ROOT / "run.py"), "-m", "dataset=features",
               f"dataset.path={features}", "backbone=mlp", "strategy=cluster_margin",
               "strategy.hac=exact,graph", f"seeds=[{seeds}]", f"budget.initial={args.initial}",
               f"budget.batch={args.batch}", f"budget.cycles={args.cycles}",
               f"trainer.epochs={args.epochs}", f"results_dir={runs}", *args.overrides]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    subprocess.run([sys.executable, "-m", "alharness.report", str(runs), "--out", str(report)],
                   check=True, cwd=ROOT)

    import pandas as pd

    from alharness.report.build import collect

    results = collect([runs])
    table = paired_table(results.rows)
    print("\ntest accuracy, graph vs exact HAC (paired by seed; p: two-sided paired t-test)")
    print(table.to_string(index=False))
    wins = pd.read_csv(report / "win_matrix_alfamix.csv", index_col=0)
    print(f"\nwin matrix (alfamix convention, {report}/win_matrix_alfamix.csv):")
    print(wins.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
