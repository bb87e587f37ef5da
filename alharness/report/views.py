"""Readable versions of the numeric tables, one per setting, shared by the Markdown files
and ``index.html`` so both show the same numbers the same way."""

from __future__ import annotations

import math

import pandas as pd


def mean_pm(mean: float, std: float, digits: int = 3) -> str:
    """``0.912 ± 0.010``; a single seed has no spread and shows the mean alone."""
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _seconds(mean: float, std: float = math.nan) -> str:
    """Seconds to three significant digits: selection times span 1e-4 to 1e3."""
    if math.isnan(mean):
        return "—"
    return f"{mean:.3g}" if math.isnan(std) else f"{mean:.3g} ± {std:.2g}"


def _ordered(table: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    order = {v: i for i, v in enumerate(variants)}
    return table.sort_values("variant", key=lambda s: s.map(order)).reset_index(drop=True)


def metric_view(stats: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Labelled count × variant, cells ``mean ± std``; ``(n=2)`` marks a cell with fewer
    seeds than the setting's most, so a thin average is visible."""
    most = stats["n_seeds"].max()
    cells = [mean_pm(m, s) + ("" if n == most else f" (n={n})")
             for m, s, n in zip(stats["mean"], stats["std"], stats["n_seeds"], strict=True)]
    view = stats.assign(cell=cells).pivot(index="n_labelled", columns="variant", values="cell")
    view = view.reindex(columns=[v for v in variants if v in view.columns]).fillna("—")
    view.index.name = "labelled"
    view.columns.name = None
    return view.reset_index()


def auc_view(auc: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    auc = _ordered(auc, variants)
    return pd.DataFrame({
        "variant": auc["variant"],
        "normalised AUC": [mean_pm(m, s) for m, s in zip(auc["auc_mean"], auc["auc_std"],
                                                          strict=True)],
        "seeds": auc["n_seeds"]})


def labels_view(labels: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    labels = _ordered(labels, variants)
    baseline = labels["baseline"].iloc[0]
    target = labels["target"].iloc[0]
    return pd.DataFrame({
        "variant": labels["variant"],
        f"labels to reach {target:.3f}": ["not reached" if math.isnan(n) else f"{n:.0f}"
                                          for n in labels["labels_needed"]],
        f"% saved vs {baseline}": ["—" if math.isnan(p) else f"{'> ' * bool(bound)}{p:.1f}%"
                                   for p, bound in zip(labels["saved_pct"],
                                                       labels["saved_is_lower_bound"],
                                                       strict=True)]})


def time_view(times: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    times = _ordered(times, variants)
    return pd.DataFrame({
        "variant": times["variant"],
        "select s / cycle": [_seconds(m, s) for m, s in zip(
            times["select_seconds_mean"], times["select_seconds_std"], strict=True)],
        "of which prepare s / cycle": [_seconds(v) for v in times["prepare_seconds_mean"]],
        "selections": times["n_selections"]})
