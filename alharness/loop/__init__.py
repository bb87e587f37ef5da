"""The AL cycle: seeding, checkpoint/resume, results folders, logging.

`run_experiment` and `run_seed` are imported on first use, so that the config schema
(`alharness.config`) can use `alharness.loop.budget` without importing the runner."""

from typing import Any

__all__ = ["run_experiment", "run_seed"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from alharness.loop import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
