"""``python -m alharness.report RESULTS_DIR... --out DIR``; see :mod:`alharness.report.cli`."""

import sys

from alharness.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
