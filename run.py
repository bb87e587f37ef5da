"""Entry point: ``python run.py [key=value ...]`` or ``python run.py -m <sweep>``.

Everything, the error contract included, is `alharness.cli.main`."""

import sys

from alharness.cli import main

if __name__ == "__main__":
    sys.exit(main())
