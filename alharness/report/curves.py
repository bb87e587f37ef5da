"""Learning curves: the metric against the labelled count, mean over seeds with a shaded
spread, one figure per setting and one line per strategy variant.

The spread is the sample standard deviation over seeds (ddof=1) or the standard error of
the mean (that std / √n; Cluster-Margin's CIFAR/SVHN plots use it). A point with one seed
has no band.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alharness.report.style import Style

SPREADS = ("std", "sem")


def curve_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, sem and seed count of the metric per setting × variant × labelled count."""
    stats = (rows.groupby(["setting_label", "variant", "n_labelled"])["metric"]
             .agg(mean="mean", std="std", n_seeds="count").reset_index())
    stats["sem"] = stats["std"] / np.sqrt(stats["n_seeds"])
    return stats


def slug(text: str) -> str:
    """A file name for a setting label: ``digits · small_cnn · 20+20x8`` → ``digits_small_cnn_20+20x8``."""
    return re.sub(r"[^A-Za-z0-9+.=-]+", "_", text).strip("_")


def seed_count_text(counts: pd.Series) -> str:
    low, high = int(counts.min()), int(counts.max())
    return f"{low} seed{'s' * (high != 1)}" if low == high else f"{low}–{high} seeds"


def metric_axis_label(metric_name: str) -> str:
    return f"test {metric_name.replace('_', ' ')} (0–1)"


def budget_text(initial: object, batch: object, cycles: object) -> str:
    """``20 initial + 8 rounds × 20`` (the setting label's ``20+20x8``, spelled out)."""
    return f"{initial} initial + {cycles} rounds × {batch} labels"


def plot_setting(stats: pd.DataFrame, setting: str, metric_name: str, styles: dict[str, Style],
                 spread: str = "std", budget: str = "") -> Figure:
    """One setting's learning curves; ``stats`` is :func:`curve_stats` for that setting,
    ``budget`` a :func:`budget_text` for the subtitle."""
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    variants = [v for v in styles if v in set(stats["variant"])]
    for variant in variants:
        line = stats[stats["variant"] == variant].sort_values("n_labelled")
        style = styles[variant]
        x, mean, band = line["n_labelled"], line["mean"], line[spread].fillna(0.0)
        ax.plot(x, mean, color=style.colour, marker=style.marker, linestyle=style.linestyle,
                markersize=4, linewidth=1.5, label=variant)
        ax.fill_between(x, mean - band, mean + band, color=style.colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("labelled examples (count)")
    ax.set_ylabel(metric_axis_label(metric_name))
    ax.set_title(f"{setting}\n{budget + '; ' if budget else ''}mean ± {spread} over "
                 f"{seed_count_text(stats['n_seeds'])}", fontsize=10)
    ax.grid(True, linewidth=0.5, alpha=0.5)
    ax.margins(x=0.02)
    if len(variants) <= 6:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    else:  # many sweep variants: a legend beside the axes never hides a curve
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        fig.set_size_inches(8.5, 4.2)
    return fig


def plot_learning_curves(rows: pd.DataFrame, out_dir: str | Path, styles: dict[str, Style],
                         spread: str = "std") -> dict[str, Path]:
    """Write ``<setting>.png`` and ``.pdf`` per setting; return the PNG path per setting."""
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, not {spread!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = curve_stats(rows)
    first = rows.groupby("setting_label").first()
    written = {}
    for setting, group in stats.groupby("setting_label", sort=True):
        budget = budget_text(*first.loc[setting, ["budget_initial", "budget_batch",
                                                   "budget_cycles"]])
        fig = plot_setting(group, str(setting), str(first.at[setting, "metric_name"]), styles,
                           spread, budget)
        stem = slug(str(setting))
        for suffix in (".png", ".pdf"):
            fig.savefig(out_dir / f"{stem}{suffix}", dpi=200)
        written[str(setting)] = out_dir / f"{stem}.png"
    return written
