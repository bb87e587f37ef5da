"""Plumbing shared by the ``scripts/bench_*.py`` tables: each row runs in a fresh process,
so that its peak RSS (``ru_maxrss``) is its own and no earlier row warms its caches."""

from __future__ import annotations

import json
import resource
import subprocess


class RowError(RuntimeError):
    """A benchmark row's process failed; the message is the last line of its stderr."""


def run_row(cmd: list[str]) -> dict:
    """Run ``cmd`` (a script in its worker mode) and return the JSON object it printed
    last on stdout."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RowError((proc.stderr.strip().splitlines() or ["(no output)"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
