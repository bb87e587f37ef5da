"""The pairwise win (penalty) matrix: how often the row variant significantly beats the
column variant, summed over settings, with a bottom row of how often each column is beaten
(lower is better). Two published conventions:

``alfamix`` — ALFA-Mix (Parvaneh et al., CVPR 2022; its comparison matrix and the official
    ``agg_results.py``). Per setting, at every checkpoint except cycle 0 (the shared
    initial set), seeds are paired by seed value (the seeds both variants have there);
    with per-seed differences d (n of them), t = √n · mean(d) / std(d) with the
    POPULATION std (ddof=0). Row wins if t > t_{0.975, n−1}, the two-sided 95% critical
    value for the actual seed count (the official code hard-codes 2.776, i.e. n = 5).
    Wins are divided by L = the number of checkpoints of the setting with cycle ≥ 1
    (= ``budget_cycles`` for finished runs; a pair missing at a checkpoint scores 0 there
    but it still counts in L). Bottom row = column sum / (m − 1), m = number of variants.

``badge`` — BADGE (Ash et al., ICLR 2020; its pairwise comparison matrix and
    ``scripts/agg_results.py``).
    Per setting, at every checkpoint including cycle 0 (BADGE's checkpoints start at the
    seed-set size), the first N = min(n_i, n_j, 5) runs of each variant are paired by run
    order (ascending seed); with sample std (ddof=1), t = mean(d) / (std(d)/√N) and the
    two-sided p = 2·P(T_{N−1} > |t|); row wins if mean(d) > 0 and p < 0.05, weighted 1/L
    with L = the number of checkpoints of the setting. Bottom row = column mean over all m
    rows (the zero diagonal included, as in BADGE's ``matPlot.mean(axis=0)``). (BADGE's code
    adds to ``matrix[a1][a2]`` when a1's mean accuracy difference is negative and draws
    that dict transposed, so its cell (row, column) also reads "row beats column".)
    BADGE's geometric checkpoint spacing and its stop at 99% of random's final accuracy are
    not applied: every cycle of the schedule is a checkpoint.

In both, a checkpoint is a labelled count; fewer than 2 paired seeds give no verdict; zero
spread with a non-zero mean is a win (t = ±∞) and all-zero differences are not.

A cell whose two variants never have 2 paired seeds at any checkpoint of any setting
cannot be tested: it is ``n/a`` (NaN in the returned matrix, "n/a" in the CSV and the
figure), not 0, and it is left out of the bottom row: ``alfamix`` takes the mean of the
column's tested cells (= column sum / (m − 1) when all are tested), ``badge`` the mean of
its tested cells and the zero diagonal (= column mean when all are tested). A column with
no tested cell is ``n/a`` there too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from scipy import stats

from alharness.report.style import variant_order

#: Index label of the bottom row ("how often each column is beaten").
BEATEN = "beaten"


def t_critical(n_seeds: int) -> float:
    """Two-sided 95% critical value of Student's t for ``n_seeds`` paired seeds."""
    return float(stats.t.ppf(0.975, n_seeds - 1))


def paired_t(diff: np.ndarray, ddof: int) -> float:
    """√n · mean / std(ddof); ±inf for zero spread, nan for all-zero differences."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt(len(diff)) * diff.mean() / diff.std(ddof=ddof))


def _alfamix_diff(a: pd.Series, b: pd.Series) -> np.ndarray:
    return (a - b).dropna().to_numpy()


def _alfamix_wins(diff: np.ndarray) -> bool:
    return len(diff) >= 2 and paired_t(diff, ddof=0) > t_critical(len(diff))


def _badge_diff(a: pd.Series, b: pd.Series) -> np.ndarray:
    a, b = a.dropna().sort_index(), b.dropna().sort_index()
    n = min(len(a), len(b), 5)
    return a.to_numpy()[:n] - b.to_numpy()[:n]


def _badge_wins(diff: np.ndarray) -> bool:
    if len(diff) < 2:
        return False
    t = paired_t(diff, ddof=1)
    return diff.mean() > 0 and 2 * stats.t.sf(abs(t), len(diff) - 1) < 0.05


def _tested_off_diagonal(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column sums and counts of the tested (non-NaN) off-diagonal cells."""
    off = np.where(np.eye(len(matrix), dtype=bool), np.nan, matrix)
    return np.nansum(off, axis=0), (~np.isnan(off)).sum(axis=0)


def _alfamix_beaten(matrix: np.ndarray) -> np.ndarray:
    total, tested = _tested_off_diagonal(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tested > 0, total / tested, np.nan)


def _badge_beaten(matrix: np.ndarray) -> np.ndarray:
    total, tested = _tested_off_diagonal(matrix)
    return np.where(tested > 0, total / (tested + 1), np.nan)


@dataclass(frozen=True)
class Convention:
    name: str
    skip_initial: bool  # leave out cycle 0
    differences: Callable[[pd.Series, pd.Series], np.ndarray]  # metrics per seed → paired d
    wins: Callable[[np.ndarray], bool]
    beaten: Callable[[np.ndarray], np.ndarray]  # square matrix (NaN = untested) → bottom row
    caption: str
    unit: str  # what a cell counts (the colour bar's label)


CONVENTIONS = {
    "alfamix": Convention("alfamix", True, _alfamix_diff, _alfamix_wins, _alfamix_beaten,
                          "ALFA-Mix convention: paired t over seeds > t(0.975, n−1) per cycle ≥ 1\n"
                          "bottom row = column sum / (m − 1)",
                          "share of cycles won, summed over settings"),
    "badge": Convention("badge", False, _badge_diff, _badge_wins, _badge_beaten,
                        "BADGE convention: paired t-test p < 0.05 per checkpoint, ≤ 5 runs\n"
                        "bottom row = column mean",
                        "share of checkpoints won, summed over settings"),
}


def _setting_wins(group: pd.DataFrame, variants: list[str],
                  convention: Convention) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of this setting's checkpoints at which each row variant beats each column,
    and whether each pair could be tested (≥ 2 paired seeds) at any of them."""
    if convention.skip_initial:
        group = group[group["cycle"] > 0]
    table = group.pivot(index=["n_labelled", "seed"], columns="variant", values="metric")
    table = table.reindex(columns=variants)
    checkpoints = table.index.unique("n_labelled")
    wins = np.zeros((len(variants), len(variants)))
    tested = np.zeros_like(wins, dtype=bool)
    for checkpoint in checkpoints:
        by_seed = table.xs(checkpoint, level="n_labelled")
        for i, row in enumerate(variants):
            for j, col in enumerate(variants):
                if i != j:
                    diff = convention.differences(by_seed[row], by_seed[col])
                    tested[i, j] |= len(diff) >= 2
                    wins[i, j] += convention.wins(diff)
    return wins / max(len(checkpoints), 1), tested


def win_matrix(rows: pd.DataFrame, convention: str = "alfamix",
               variants: list[str] | None = None) -> pd.DataFrame:
    """(m+1) × m matrix: cell (a, b) = how often a significantly beats b, summed over
    settings (NaN where the pair could never be tested); last row ``beaten`` = how often
    each column is beaten (see module doc).

    ``rows`` are annotated rows (``load_results``); ``variants`` fixes the order (default:
    :func:`~alharness.report.style.variant_order`, baselines first)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, not {convention!r}")
    conv = CONVENTIONS[convention]
    variants = list(variants) if variants is not None else variant_order(rows)
    if len(variants) < 2:
        raise ValueError("a win matrix needs at least two strategy variants")
    per_setting = [_setting_wins(group, variants, conv)
                   for _, group in rows.groupby("setting_label", sort=True)]
    total = sum(wins for wins, _ in per_setting)
    tested = np.logical_or.reduce([t for _, t in per_setting]) | np.eye(len(variants), dtype=bool)
    total = np.where(tested, total, np.nan)
    matrix = pd.DataFrame(np.vstack([total, conv.beaten(total)]), columns=variants,
                          index=[*variants, BEATEN])
    matrix.index.name = "row beats column"
    return matrix


def format_cell(value: float) -> str:
    """A matrix cell as shown: two decimals, or ``n/a`` where it could not be tested."""
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def _text_colour(rgba: tuple[float, ...]) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


#: Longer variant labels (sweeps) get numbered columns, so the square stays square.
_LONG_LABEL = 14


def plot_win_matrix(matrix: pd.DataFrame, convention: str, n_settings: int) -> Figure:
    """Annotated heat map; the bottom row is drawn apart, below the square. With long
    variant labels the columns are numbered and the rows say which number is which."""
    variants = list(matrix.columns)
    m = len(variants)
    square = matrix.loc[variants].to_numpy()
    beaten = matrix.loc[BEATEN].to_numpy()
    numbered = max(len(v) for v in variants) > _LONG_LABEL
    rows = [f"({i + 1}) {v}" for i, v in enumerate(variants)] if numbered else variants
    columns = [f"({i + 1})" for i in range(m)] if numbered else variants
    values = matrix.to_numpy(dtype=float)
    norm = Normalize(vmin=0.0, vmax=max(float(np.nanmax(values, initial=0.0)), 1e-9))
    width = 2.6 + 0.7 * m + 0.075 * max(len(r) for r in rows)
    fig = Figure(figsize=(width, 2.2 + 0.6 * (m + 1) + 0.05 * max(map(len, columns))),
                 layout="constrained")
    ax, ax_bottom = fig.subplots(2, 1, height_ratios=[m, 1], sharex=True)
    image = ax.imshow(np.where(np.eye(m, dtype=bool), np.nan, square), cmap="cividis",
                      norm=norm)
    ax_bottom.imshow(beaten[None, :], cmap="cividis", norm=norm)
    for axis in (ax, ax_bottom):
        axis.set_facecolor("#eeeeee")  # the diagonal and untested (n/a) cells
    for axis, cells, labels in ((ax, square, rows), (ax_bottom, beaten[None, :], [BEATEN])):
        for (i, j), value in np.ndenumerate(cells):
            diagonal = axis is ax and i == j
            blank = diagonal or np.isnan(value)
            colour = "black" if blank else _text_colour(image.cmap(norm(value)))
            axis.text(j, i, "—" if diagonal else format_cell(value), ha="center", va="center",
                      color=colour, fontsize=9)
        axis.set_yticks(range(len(labels)), labels)
        axis.tick_params(length=0)
        for spine in axis.spines.values():
            spine.set_visible(False)
    if numbered:
        ax_bottom.set_xticks(range(m), columns)
    else:
        ax_bottom.set_xticks(range(m), columns, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_ylabel("row (winner)")
    ax_bottom.set_xlabel("column (loser)")
    ax.set_title(f"Pairwise wins, summed over {n_settings} setting{'s' * (n_settings != 1)}\n"
                 f"{CONVENTIONS[convention].caption}", fontsize=9)
    fig.colorbar(image, ax=[ax, ax_bottom], shrink=0.8, label=CONVENTIONS[convention].unit)
    return fig


def write_win_matrix(matrix: pd.DataFrame, convention: str, n_settings: int,
                     out_dir: str | Path) -> Path:
    """``win_matrix_<convention>.csv/.png/.pdf``; returns the PNG path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"win_matrix_{convention}"
    matrix.to_csv(f"{stem}.csv", na_rep="n/a")
    fig = plot_win_matrix(matrix, convention, n_settings)
    for suffix in (".png", ".pdf"):
        fig.savefig(f"{stem}{suffix}", dpi=200)
    return Path(f"{stem}.png")
