"""Regenerate the pairwise win matrix (heat map PNG + PDF, and CSV) from results folders.

    python scripts/figure_win_matrix.py results/ --convention alfamix --methods alfamix --out figures/

Thin wrapper over :func:`alharness.report.win_matrix`; the conventions are defined in
``alharness/report/win_matrix.py``. The matrix is also printed.
"""

from __future__ import annotations

import sys

from alharness.report import win_matrix, write_win_matrix
from alharness.report.cli import collect_and_report, figure_parser, one_line_errors
from alharness.report.style import variant_order
from alharness.report.win_matrix import CONVENTIONS


def main(argv: list[str] | None = None) -> int:
    p = figure_parser(__doc__.splitlines()[0])
    p.add_argument("--convention", choices=sorted(CONVENTIONS), default="alfamix")
    p.add_argument("--out", default="figures", help="output folder")
    args = p.parse_args(argv)

    def run() -> None:
        results = collect_and_report(args)
        rows = results.rows
        matrix = win_matrix(rows, args.convention, variant_order(rows, results.order))
        path = write_win_matrix(matrix, args.convention, rows["setting_label"].nunique(),
                                args.out)
        print(matrix.round(3).to_string(), f"\n{path}", sep="\n")

    return one_line_errors(run)


if __name__ == "__main__":
    sys.exit(main())
