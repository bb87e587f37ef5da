"""The one-screen summary printed after a run or a sweep. It reads the runs back with the
report's loader, so it groups by setting exactly as the report does (same ``setting``
hash, same names, e.g. ``[trainer.lr=0.01]``), never averages across settings, and lists
the same findings (one seed, missing seeds, ...) and what it left out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alharness.errors import HarnessError


def summary(run_dirs: Sequence[Path], failed: Sequence[str] = ()) -> str:
    """Per setting: the metric's mean ± std over seeds at every labelled count (one column
    per strategy variant), then seconds spent; then findings, failed sweep points and the
    runs of the same experiment folders that are not among ``run_dirs``."""
    from alharness.report.build import collect
    from alharness.report.curves import curve_stats
    from alharness.report.load import find_run_folders
    from alharness.report.style import variant_order
    from alharness.report.views import metric_view

    run_dirs = [Path(d) for d in run_dirs]
    lines: list[str] = []
    try:
        results = collect(run_dirs) if run_dirs else None
    except HarnessError as exc:
        results, lines = None, [f"(no summary: {exc})"]
    if results is not None:
        rows = results.rows
        order = variant_order(rows, results.order)
        for setting, group in rows.groupby("setting_label", sort=True):
            variants = [v for v in order if v in set(group["variant"])]
            table = metric_view(curve_stats(group), variants)
            seconds = group.groupby("variant").agg(
                seeds=("seed", "nunique"), train_seconds=("train_seconds", "sum"),
                select_seconds=("select_seconds", "sum")).reindex(variants).round(2)
            lines += [f"test {group['metric_name'].iloc[0]}, mean ± std over seeds — {setting}",
                      table.to_string(index=False), "", seconds.to_string(), ""]
        lines += [f"note: {finding}" for finding in results.findings]
    lines += [f"failed: {point}" for point in failed]
    roots = sorted({d.parent for d in run_dirs})
    others = [f for f in find_run_folders([r for r in roots if r.is_dir()]) if f not in run_dirs]
    if others:
        where = " ".join(f"{r}/" for r in roots)
        lines.append(f"left out: {len(others)} other run(s) in {where} (from other commands); "
                     f"python -m alharness.report {where} compares them all")
    return "\n".join(lines).rstrip() or "(no runs)"
