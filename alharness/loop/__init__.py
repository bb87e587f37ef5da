"""The AL cycle: seeding, checkpoint/resume, results folders, logging."""

from alharness.loop.runner import run_experiment, run_seed

__all__ = ["run_experiment", "run_seed"]
