"""``python -m alharness [overrides]`` (also the ``alharness`` command): ``run.py``'s command
line for an installed alharness, composing the packaged configs from any directory."""

import sys

from alharness.cli import main

if __name__ == "__main__":
    sys.exit(main())
