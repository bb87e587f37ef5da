"""Summary numbers per setting × strategy variant, as tidy DataFrames (one CSV each).

- metric at each labelled count: :func:`alharness.report.curves.curve_stats`;
- :func:`auc_table`: normalised area under the learning curve;
- :func:`labels_to_target`: labels needed to reach a target metric and the % saved
  against a baseline (Cluster-Margin's headline numbers, Citovsky et al. 2021);
- :func:`selection_time_table`: seconds spent selecting per cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alharness.report.curves import curve_stats

#: Default target = this fraction of the best final mean metric in the setting.
DEFAULT_TARGET_FRACTION = 0.95
TIME_COLUMNS = ("select_seconds", "prepare_seconds")


def normalised_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under y(x) divided by the x-range: the curve's mean height, in metric
    units, so settings with different budgets compare. One point → that point."""
    if len(x) == 1:
        return float(y[0])
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def auc_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Normalised AUC per run over the labelled counts of its setting, then mean, std and
    seed count per variant. A run that does not span its setting's whole range (an
    unfinished run) is left out of the AUC, which would otherwise not compare."""
    span = rows.groupby("setting_label")["n_labelled"].agg(["min", "max"])
    per_run = []
    for (setting, variant, seed), run in rows.groupby(["setting_label", "variant", "seed"]):
        run = run.sort_values("n_labelled")
        x, y = run["n_labelled"].to_numpy(float), run["metric"].to_numpy(float)
        spans = (x[0], x[-1]) == (span.at[setting, "min"], span.at[setting, "max"])
        per_run.append((setting, variant, seed, normalised_auc(x, y) if spans else np.nan))
    per_run = pd.DataFrame(per_run, columns=["setting_label", "variant", "seed", "auc"])
    return (per_run.groupby(["setting_label", "variant"])["auc"]
            .agg(auc_mean="mean", auc_std="std", n_seeds="count").reset_index())


def first_crossing(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """The labelled count at which the curve first reaches ``target``, interpolated
    linearly between the last checkpoint below and the first at or above it; the first
    checkpoint if it already reaches it; NaN if the curve never does."""
    reached = np.flatnonzero(y >= target)
    if len(reached) == 0:
        return float("nan")
    i = reached[0]
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def labels_to_target(rows: pd.DataFrame, target: float | None = None,
                     target_fraction: float = DEFAULT_TARGET_FRACTION,
                     baseline: str | None = "random") -> pd.DataFrame:
    """Labels each variant's mean curve needs to reach the target, per setting.

    ``target`` is an absolute metric value; without it, the target of a setting is
    ``target_fraction`` × the best mean metric at the setting's largest labelled count.
    Labels are total labelled examples (the initial set included). ``saved_pct`` =
    100 · (1 − labels / baseline's labels). Where the baseline never reaches the target,
    its largest labelled count stands in and ``saved_is_lower_bound`` is true (the saving
    is at least that); NaN where the variant never reaches it or there is no baseline."""
    stats = curve_stats(rows).sort_values("n_labelled")
    out = []
    for setting, group in stats.groupby("setting_label", sort=True):
        final = group[group["n_labelled"] == group["n_labelled"].max()]
        goal = target if target is not None else target_fraction * final["mean"].max()
        for variant, curve in group.groupby("variant", sort=True):
            needed = first_crossing(curve["n_labelled"].to_numpy(float),
                                    curve["mean"].to_numpy(float), goal)
            out.append((setting, variant, goal, needed))
    table = pd.DataFrame(out, columns=["setting_label", "variant", "target", "labels_needed"])
    table["baseline"] = baseline
    base = table[table["variant"] == baseline].set_index("setting_label")["labels_needed"]
    base_max = stats[stats["variant"] == baseline].groupby("setting_label")["n_labelled"].max()
    reference = table["setting_label"].map(base.fillna(base_max))
    table["saved_pct"] = 100.0 * (1.0 - table["labels_needed"] / reference)
    table["saved_is_lower_bound"] = table["setting_label"].map(base.isna()).fillna(False)
    return table


def selection_time_table(rows: pd.DataFrame, by_cycle: bool = False) -> pd.DataFrame:
    """Mean and std of the seconds per selection (``select_seconds``, of which
    ``prepare_seconds`` is the strategy's preparation, e.g. clustering), over seeds and the
    cycles that select (the last cycle only evaluates); per cycle with ``by_cycle``."""
    selecting = rows[rows["select_seconds"].notna()]
    selecting = selecting.assign(**{c: selecting.get(c, np.nan) for c in TIME_COLUMNS})
    keys = ["setting_label", "variant", *(["cycle", "n_labelled"] if by_cycle else [])]
    table = selecting.groupby(keys)[list(TIME_COLUMNS)].agg(["mean", "std"])
    table.columns = [f"{column}_{stat}" for column, stat in table.columns]
    table["n_selections"] = selecting.groupby(keys).size()
    return table.reset_index()
