"""The report's user-facing errors and the findings it reports instead of hiding."""

from __future__ import annotations

from dataclasses import dataclass

from alharness.errors import HarnessError


class ReportError(HarnessError):
    """The results cannot be reported (no runs, unreadable rows, ...); one line, exit 2."""


@dataclass(frozen=True)
class Finding:
    """Something a reader of the figures must know: a run left out, a seed missing, a cell
    that mixes configs. Printed as a warning and listed in ``index.html``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
