"""Regenerate the "labels to reach a target" table and the % saved against a baseline
(Cluster-Margin's headline numbers) from results folders; prints Markdown.

    python scripts/table_labels_saved.py results/ --target 0.9 --baseline random --methods cluster_margin
    python scripts/table_labels_saved.py results/ --target-fraction 0.98 --out figures/tables

Thin wrapper over :func:`alharness.report.labels_to_target`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alharness.report import labels_to_target
from alharness.report.build import per_setting
from alharness.report.cli import collect_and_report, figure_parser, one_line_errors
from alharness.report.markdown import markdown_sections
from alharness.report.style import variant_order
from alharness.report.tables import DEFAULT_TARGET_FRACTION
from alharness.report.views import labels_view


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0])
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target", type=float, help="absolute metric value, e.g. 0.9")
    target.add_argument("--target-fraction", type=float, default=DEFAULT_TARGET_FRACTION,
                        help="fraction of each setting's best final mean metric")
    p.add_argument("--baseline", default="random")
    p.add_argument("--out", type=Path, help="also write labels_to_target.csv and .md here")
    args = p.parse_args(argv)

    def run() -> None:
        results = collect_and_report(args, args.baseline)
        rows = results.rows
        table = labels_to_target(rows, args.target, args.target_fraction, args.baseline)
        text = markdown_sections("Labels needed to reach the target",
                                 per_setting(table, labels_view, variant_order(rows, results.order)))
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out / "labels_to_target.csv", index=False)
            (args.out / "labels_to_target.md").write_text(text)

    return one_line_errors(run)


if __name__ == "__main__":
    sys.exit(main())
