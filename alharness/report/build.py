"""One call from results folders to a report folder::

    out/index.html                       everything below on one page
    out/validation.txt                   the findings (also printed as warnings)
    out/curves/<setting>.png|pdf         learning curves, one per setting
    out/win_matrix_<convention>.csv|png|pdf
    out/tables/metric.csv|md             mean ± std at each labelled count
    out/tables/auc.csv|md                normalised area under the learning curve
    out/tables/labels_to_target.csv|md   labels to reach a target, % saved vs a baseline
    out/tables/selection_time.csv|md     seconds per selection (+ ..._per_cycle.csv)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from alharness.report.curves import curve_stats, plot_learning_curves
from alharness.report.errors import Finding
from alharness.report.html import Section, render_index
from alharness.report.load import Results, load
from alharness.report.markdown import markdown_sections
from alharness.report.style import variant_styles
from alharness.report.tables import (
    DEFAULT_TARGET_FRACTION,
    auc_table,
    labels_to_target,
    selection_time_table,
)
from alharness.report.validate import validate
from alharness.report.views import auc_view, labels_view, metric_view, time_view
from alharness.report.win_matrix import (
    BEATEN,
    CONVENTIONS,
    format_cell,
    win_matrix,
    write_win_matrix,
)


@dataclass
class Report:
    """What a report computed and where it wrote it."""

    out: Path
    rows: pd.DataFrame
    findings: list[Finding]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def per_setting(table: pd.DataFrame, view: Callable[[pd.DataFrame, list[str]], pd.DataFrame],
                variants: list[str]) -> dict[str, pd.DataFrame]:
    """``view`` applied to each setting's part of ``table``: the Markdown/HTML sections."""
    return {str(s): view(group, variants) for s, group in table.groupby("setting_label", sort=True)}


def _baseline_findings(rows: pd.DataFrame, baseline: str | None) -> list[Finding]:
    if baseline is None:
        return []
    lacking = sorted(s for s, v in rows.groupby("setting_label")["variant"].unique().items()
                     if baseline not in set(v))
    return [Finding("baseline", f"{s}: no runs of baseline {baseline!r}; % saved not computed")
            for s in lacking]


def collect(paths: Iterable[str | Path], include_unfinished: bool = False,
            baseline: str | None = None, methods: str | Iterable[str] | None = None) -> Results:
    """Load the runs (only ``methods``' strategies, see :mod:`alharness.report.presets`)
    and add every validation finding (and a missing ``baseline``)."""
    results = load(paths, include_unfinished, methods)
    results.findings += validate(results.rows) + _baseline_findings(results.rows, baseline)
    return results


def print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        print(f"warning: {finding}", file=sys.stderr)


#: Table name → (title, readable per-setting view); every table is also written as CSV.
VIEWS = {
    "metric": ("Metric at each labelled count (mean ± std over seeds)", metric_view),
    "auc": ("Normalised area under the learning curve", auc_view),
    "labels_to_target": ("Labels needed to reach the target", labels_view),
    "selection_time": ("Selection time per cycle (seconds)", time_view),
}


def _write_tables(tables: dict[str, pd.DataFrame], shown: dict[str, dict[str, pd.DataFrame]],
                  out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    for name, sections in shown.items():
        (out / f"{name}.md").write_text(markdown_sections(VIEWS[name][0], sections))
    return [out / f"{name}.csv" for name in tables] + [out / f"{name}.md" for name in shown]


def _matrix_section(matrix: pd.DataFrame, convention: str, settings: int, png: Path) -> Section:
    note = (f"{CONVENTIONS[convention].caption.replace(chr(10), '; ')}. Cell = how often the "
            f"row variant significantly beats the column variant, summed over {settings} "
            f"setting(s); row '{BEATEN}' = how often each column is beaten (lower is "
            "better); n/a = never 2 paired seeds, so no test (left out of the bottom row).")
    return Section(f"Pairwise win matrix ({convention})", png.name, notes=[note],
                   tables={"matrix": matrix.map(format_cell).reset_index()})


def write_report(paths: Iterable[str | Path], out: str | Path, convention: str = "alfamix",
                 spread: str = "std", target: float | None = None,
                 target_fraction: float = DEFAULT_TARGET_FRACTION,
                 baseline: str | None = "random", include_unfinished: bool = False,
                 quiet: bool = False, methods: str | Iterable[str] | None = None) -> Report:
    """Read every run under ``paths`` and write curves, the win matrix, tables and
    ``index.html`` to ``out``. ``methods``: a preset (``alfamix``, ``badge``,
    ``cluster_margin``) or strategy names to keep, in that order. Findings are printed to
    stderr unless ``quiet``."""
    out = Path(out)
    results = collect(paths, include_unfinished, baseline, methods)
    rows, findings = results.rows, results.findings
    styles = variant_styles(rows, results.order)
    variants = list(styles)
    settings = rows["setting_label"].nunique()
    report = Report(out, rows, findings, tables={
        "metric": curve_stats(rows),
        "auc": auc_table(rows),
        "labels_to_target": labels_to_target(rows, target, target_fraction, baseline),
        "selection_time": selection_time_table(rows),
        "selection_time_per_cycle": selection_time_table(rows, by_cycle=True),
    })
    shown = {name: per_setting(report.tables[name], view, variants)
             for name, (_, view) in VIEWS.items()}
    report.files += _write_tables(report.tables, shown, out / "tables")

    curves = plot_learning_curves(rows, out / "curves", styles, spread)
    report.files += [p.with_suffix(s) for p in curves.values() for s in (".png", ".pdf")]
    sections = [Section(setting, str(png.relative_to(out)),
                        tables={VIEWS[name][0]: shown[name][setting] for name in VIEWS})
                for setting, png in curves.items()]
    if len(variants) >= 2:
        matrix = win_matrix(rows, convention, variants)
        png = write_win_matrix(matrix, convention, settings, out)
        report.files += [png.with_suffix(s) for s in (".csv", ".png", ".pdf")]
        report.tables[f"win_matrix_{convention}"] = matrix
        sections.insert(0, _matrix_section(matrix, convention, settings, png))
    else:
        findings.append(Finding("win-matrix", "only one strategy variant; no win matrix"))

    summary = [f"{rows['run_dir'].nunique()} runs, {len(variants)} strategy variants, "
               f"{settings} setting(s). Curves: mean ± {spread} over seeds.",
               "Normalised AUC = trapezoid area under metric vs. labelled count, divided by "
               "the labelled-count range (= mean metric over the budget).",
               "Labels to target: first labelled count at which the mean curve reaches the "
               "target, linearly interpolated between checkpoints (initial set included)."]
    (out / "validation.txt").write_text("".join(f"{f}\n" for f in findings) or "no findings\n")
    (out / "index.html").write_text(render_index("Active learning report", summary,
                                                 findings, sections))
    report.files += [out / "validation.txt", out / "index.html"]
    if not quiet:
        print_findings(findings)
    return report


def write_learning_curves(experiment_dir: str | Path, out: str | Path | None = None,
                          spread: str = "std", include_unfinished: bool = False) -> list[Path]:
    """Learning-curve PNGs (and PDFs) of one experiment folder (``results/<experiment>/``,
    or any results folder); returns the PNG paths, one per setting, e.g. to log them to
    wandb at the end of a run. ``out`` defaults to ``<experiment_dir>/figures``. Findings
    (unfinished runs, missing seeds) are not printed; use :func:`write_report` for them."""
    experiment_dir = Path(experiment_dir)
    results = collect([experiment_dir], include_unfinished)
    written = plot_learning_curves(results.rows, out or experiment_dir / "figures",
                                   variant_styles(results.rows, results.order), spread)
    return list(written.values())
