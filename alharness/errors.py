"""Errors the user can fix. The command line (`alharness.cli`) prints them as one line,
``error: <message>``, and exits with code 2.

Anything that is *not* a `HarnessError` is a bug and keeps its traceback.
"""


class HarnessError(Exception):
    """Base class: the message must say what went wrong and what to do about it."""


class ConfigError(HarnessError):
    """A config value or override is invalid (unknown name, budget larger than the pool, ...)."""


class DataError(HarnessError):
    """A dataset is missing, unreadable or inconsistent."""


class CheckpointError(HarnessError):
    """A run's checkpoint or results folder cannot be read back."""


class SelectionError(HarnessError):
    """A strategy cannot run on the outputs or model it was given."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with a one-line message saying which cycle was saved last.

    A `KeyboardInterrupt` on purpose: Hydra's job runner catches `Exception` only, so an
    interrupted sweep stops instead of going on to its next job."""
