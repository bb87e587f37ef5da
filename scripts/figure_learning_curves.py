"""Regenerate the learning-curve figures (one PNG + PDF per setting) from results folders.

    python scripts/figure_learning_curves.py results/ --out figures/curves --spread sem

Thin wrapper over :func:`alharness.report.plot_learning_curves`; findings (unfinished
runs, missing seeds, mixed configs) are printed as warnings.
"""

from __future__ import annotations

import sys

from alharness.report import plot_learning_curves, variant_styles
from alharness.report.cli import collect_and_report, figure_parser, one_line_errors
from alharness.report.curves import SPREADS


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0])
    p.add_argument("--out", default="figures/curves", help="output folder")
    p.add_argument("--spread", choices=SPREADS, default="std", help="shaded band")
    args = p.parse_args(argv)

    def run() -> None:
        results = collect_and_report(args)
        written = plot_learning_curves(results.rows, args.out, variant_styles(results.rows, results.order),
                                       args.spread)
        print("\n".join(str(path) for path in written.values()))

    return one_line_errors(run)


if __name__ == "__main__":
    sys.exit(main())
