"""The command line: ``python run.py [key=value ...]`` runs a config, ``-m`` sweeps.

`main` carries the whole error contract, so every entry point calls it:

- A mistake the user can fix is one line on stderr, ``error: <key>: <what is wrong>
  (got <value>; expected ...)``, exit code 2, and nothing is written. This covers Hydra's
  own composition errors (an unknown option lists the valid ones, an unknown key suggests
  the nearest) as well as the schema (`alharness.config.schema`), the data and the
  results folders. To write nothing, everything is checked *before* Hydra runs the job:
  Hydra creates its output folder (``results/<experiment>/.hydra/…``) before the job's
  first line. So the config is composed with Hydra's own composer, validated, its
  dataset loaded and every seed's folder read; only then does Hydra run it.
- ``-m`` sweeps: every point is composed and validated first. A composition error (an
  unknown option or key) stops the command before anything runs, as does a sweep whose
  every point is invalid. Otherwise a bad point fails alone, with one line, the others
  run, the sweep summary lists it, and the exit code is 2.
- Ctrl-C: one line saying which cycle is saved and that re-running the same command
  resumes there; exit code 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra._internal.utils import _run_hydra, get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from alharness.config.compose import (
    CONFIG_DIR,
    CONFIG_NAME,
    TASK_NAME,
    Composer,
    job_returns,
    to_plain,
)
from alharness.config.messages import contract
from alharness.errors import ConfigError, HarnessError, RunInterrupted

USAGE = "python run.py [--multirun] [key=value ...]; python run.py --help lists the options"


@dataclass
class JobOutcome:
    """What one sweep job sends back to the command that launched it (picklable)."""

    point: list[str]
    run_dirs: list[str] = field(default_factory=list)
    error: str | None = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except HarnessError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt as exc:
        message = str(exc) if isinstance(exc, RunInterrupted) else (
            "interrupted before a run started; nothing was written by it")
        print(message, file=sys.stderr, flush=True)
        return 130
    finally:
        GlobalHydra.instance().clear()


def _error(message: str) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr, flush=True)


def _main(argv: list[str]) -> int:
    parser = get_args_parser()

    def fail(message: str) -> None:
        raise ConfigError(contract("command line", message, expected=USAGE))

    parser.error = fail  # argparse's own errors: the same one line, exit 2
    args = parser.parse_args(argv)
    commands = sum([args.run, args.multirun, args.cfg is not None, args.info is not None,
                    args.shell_completion])
    if commands > 1:
        fail("give only one of --run, --multirun, --cfg, --info, --shell-completion")
    config_dir = Path(args.config_path).absolute() if args.config_path else CONFIG_DIR
    composer = Composer(config_dir, args.config_name or CONFIG_NAME, args.config_dir)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        if not args.shell_completion:
            composer.compose(args.overrides)
        GlobalHydra.instance().clear()
        args.config_path = str(config_dir)
        args.overrides = [*args.overrides, f"hydra.job.name={TASK_NAME}"]  # not "cli"
        _run_hydra(args=args, args_parser=parser, task_function=_no_task,
                   config_path=str(config_dir), config_name=composer.config_name)
        return 0
    if args.multirun:
        return _sweep(composer, args.overrides)
    return _run(composer, args.overrides)


def _no_task(cfg: DictConfig) -> None:
    """Hydra's informational commands (--help, --cfg, --info) run no job."""


def _run(composer: Composer, overrides: list[str]) -> int:
    cfg = composer.compose(overrides)  # before importing torch: a typo fails fast
    from alharness.loop.runner import Experiment, execute

    experiment = Experiment.from_config(cfg)
    plans = experiment.plan()
    composer.hydra.run(composer.config_name, lambda _cfg: execute(experiment, plans),
                       [*overrides, "hydra.mode=RUN"])
    return 0


def _sweep(composer: Composer, overrides: list[str]) -> int:
    points = composer.sweep_points(overrides)
    configs = [composer.compose(point, RunMode.MULTIRUN) for point in points]  # a typo stops all
    from alharness.config.schema import validate_config
    from alharness.loop.summary import summary

    invalid: dict[str, list[str]] = {}
    for point, cfg in zip(points, configs, strict=True):
        try:
            validate_config(cfg)
        except ConfigError as exc:
            invalid.setdefault(str(exc), []).append(_label(point, points))
    if sum(map(len, invalid.values())) == len(points):  # nothing would run: one line per error
        for message, where in invalid.items():
            _error(f"{message} [sweep point{'s' * (len(where) > 1)}: {'; '.join(where)}]"
                   if len(invalid) > 1 else f"{message} [every sweep point]")
        return 2
    returns = composer.hydra.multirun(composer.config_name, sweep_job,
                                      [*overrides, "hydra.mode=MULTIRUN"])
    outcomes = [r.return_value for r in job_returns(returns)]
    done = [d for o in outcomes if o.error is None for d in o.run_dirs]
    failed = [f"{_label(o.point, points)}: {o.error}" for o in outcomes if o.error]
    print(f"\nsweep summary: {len(outcomes) - len(failed)} of {len(outcomes)} points ran\n"
          f"{summary([Path(d) for d in done], failed)}", flush=True)
    return 2 if failed else 0


def sweep_job(cfg: DictConfig) -> JobOutcome:
    """One sweep point, run by Hydra's launcher (possibly in another process). A user
    error fails this point only: one line here, and the sweep summary lists it."""
    from alharness.loop.runner import run_experiment

    point = [str(o) for o in HydraConfig.get().overrides.task]
    try:
        rows = run_experiment(to_plain(cfg))
    except HarnessError as exc:
        _error(f"{exc} [sweep point: {' '.join(point)}]")
        return JobOutcome(point, error=" ".join(str(exc).split()))
    root = Path(str(cfg.results_dir))
    pairs = rows[["experiment", "run_id"]].drop_duplicates().itertuples(index=False)
    return JobOutcome(point, run_dirs=[str(root / e / r) for e, r in pairs])


def _label(point: Sequence[str], points: Sequence[Sequence[str]]) -> str:
    """The overrides of ``point`` that differ between the sweep's points."""
    varying = [o for o in point if sum(o in p for p in points) < len(points)]
    return " ".join(varying or point)
