"""The one-screen summary printed at the end of a run: mean ± std across seeds."""

from __future__ import annotations

import pandas as pd

from alharness.schema import variant_labels


def summary_table(rows: pd.DataFrame) -> str:
    """Metric mean ± std per labelled count (rows) and strategy variant (columns),
    then the total training and selection seconds per variant."""
    if rows.empty:
        return "(no rows)"
    rows = rows.assign(variant=variant_labels(rows))
    metric = rows["metric_name"].iloc[0]
    stats = rows.groupby(["n_labelled", "variant"])["metric"].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    stats["cell"] = [f"{m:.4f} ± {0.0 if pd.isna(s) else s:.4f}"
                     for m, s in zip(stats["mean"], stats["std"], strict=True)]
    table = stats.pivot(index="n_labelled", columns="variant", values="cell")
    table.index.name = "labelled"
    table.columns.name = None
    seeds = rows.groupby("variant")["seed"].nunique()
    times = rows.groupby("variant")[["train_seconds", "select_seconds"]].sum().round(2)
    times.insert(0, "seeds", seeds)
    return "\n".join([f"test {metric}: mean ± std over seeds", table.to_string(), "",
                      times.to_string()])
