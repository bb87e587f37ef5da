"""Command lines: ``python -m alharness.report RESULTS_DIR... --out DIR`` (also
``alharness-report``) and the helpers the ``scripts/figure_*.py`` wrappers share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from alharness.errors import HarnessError
from alharness.report.build import collect, print_findings, write_report
from alharness.report.curves import SPREADS
from alharness.report.load import Results
from alharness.report.presets import PRESETS
from alharness.report.tables import DEFAULT_TARGET_FRACTION
from alharness.report.win_matrix import CONVENTIONS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alharness.report",
        description="Learning curves, pairwise win matrix, tables and index.html from every "
                    "run under the given results folders.")
    p.add_argument("results", nargs="+", help="results folder(s), searched recursively")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--convention", choices=sorted(CONVENTIONS), default="alfamix",
                   help="win-matrix convention (default: alfamix)")
    p.add_argument("--spread", choices=SPREADS, default="std",
                   help="shaded band: std over seeds or standard error (default: std)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target", type=float,
                        help="metric value for 'labels to reach target' (e.g. 0.9)")
    target.add_argument("--target-fraction", type=float, default=DEFAULT_TARGET_FRACTION,
                        help="without --target: this fraction of the best final mean metric "
                             f"of each setting (default: {DEFAULT_TARGET_FRACTION})")
    p.add_argument("--baseline", default="random",
                   help="variant the %% of labels saved is measured against (default: random)")
    add_methods(p)
    p.add_argument("--include-unfinished", action="store_true",
                   help="include runs that have not finished (reported either way)")
    p.add_argument("--quiet", action="store_true", help="do not print findings")
    return p


def add_methods(p: argparse.ArgumentParser) -> None:
    presets = "; ".join(f"{name} = {','.join(preset.strategies)}"
                        for name, preset in PRESETS.items())
    p.add_argument("--methods", default=None, metavar="PRESET|NAMES",
                   help="keep only these strategies, in this order: a paper's preset "
                        f"({presets}) or comma-separated strategy names (default: all)")


def figure_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every ``scripts/figure_*`` / ``table_*`` command shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("results", nargs="+", help="results folder(s), searched recursively")
    add_methods(p)
    p.add_argument("--include-unfinished", action="store_true",
                   help="include runs that have not finished (reported either way)")
    return p


def collect_and_report(args: argparse.Namespace, baseline: str | None = None) -> Results:
    """The runs a `figure_parser` command asked for, its findings printed to stderr."""
    results = collect(args.results, args.include_unfinished, baseline, args.methods)
    print_findings(results.findings)
    return results


def one_line_errors(run: Callable[[], object]) -> int:
    """Run ``run``; a user-fixable error becomes ``error: ...`` on stderr and exit code 2."""
    try:
        run()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def run() -> None:
        report = write_report(args.results, args.out, convention=args.convention,
                              spread=args.spread, target=args.target,
                              target_fraction=args.target_fraction, baseline=args.baseline,
                              include_unfinished=args.include_unfinished, quiet=args.quiet,
                              methods=args.methods)
        print(f"report: {report.out / 'index.html'} ({len(report.findings)} finding(s))")

    return one_line_errors(run)
