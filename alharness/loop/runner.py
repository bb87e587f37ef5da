"""The active-learning cycle. It owns the loop and nothing else: data, models, training
and strategies are reached only through their contracts.

For each seed (= one run): train → evaluate → select → reveal labels, for cycles
0 … ``budget.cycles``; a checkpoint after every cycle; finished runs are skipped and a
killed run resumes at its last finished cycle with the same results it would have had.

With several processes (`alharness.loop.launch`) every rank runs this loop: training and
pool inference are data-parallel, while rank 0 alone writes the run folder, selects (the
other ranks serving its inference requests) and logs; what it decides (the picks) is
broadcast, so every rank holds the same labelled set.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import alharness
from alharness.config.messages import contract
from alharness.config.schema import RunConfig, validate_config
from alharness.data import PoolData, load_dataset
from alharness.data.initial import initial_labelled
from alharness.errors import ConfigError, RunInterrupted
from alharness.loop.budget import Budget
from alharness.loop.identity import identity_config, setting_hash, stable_hash
from alharness.loop.launch import processes_to_start, start_processes, threads_per_process
from alharness.loop.loggers import RunLogger, build_logger
from alharness.loop.plan import SeedPlan, interruption, plan_seed
from alharness.loop.run_folder import LoopState
from alharness.loop.summary import summary
from alharness.models import build_backbone
from alharness.strategies import SelectionContext, build_strategy, validate_picks
from alharness.strategies.base import STRATEGIES
from alharness.training import distributed
from alharness.training.device import (
    derive_seed,
    resolve_device,
    set_cpu_threads,
    set_deterministic,
)
from alharness.training.inference import TorchPoolOutputs, evaluate
from alharness.training.trainer import TrainerConfig, train

# Purposes mixed into derived seeds, so each random stream is independent of the others.
_INIT, _TRAIN, _SELECT, _DROPOUT = 1, 2, 3, 4


@cache
def code_version() -> str:
    """Package version plus the git commit (``+dirty`` if the tree has changes)."""
    root = Path(alharness.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                             capture_output=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, timeout=5).stdout.strip()
        return f"{alharness.__version__}+{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return alharness.__version__


@dataclass
class Experiment:
    """A validated config, with the dataset loaded once for all seeds. ``cfg`` is the
    config as plain data, with the device and CPU thread count actually used (they are
    part of each run's identity, see `alharness.loop.identity.numerics`); ``requested`` is
    the config as given, which the processes of a distributed run resolve for themselves."""

    cfg: dict[str, Any]
    data: PoolData
    budget: Budget
    trainer: TrainerConfig
    device: torch.device
    requested: dict[str, Any]
    processes: int = 0  # processes this call starts for a data-parallel run (0: none)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | RunConfig) -> Experiment:
        """Validate everything that can be checked before any file is written."""
        config = validate_config(cfg)
        options = config.options
        device = resolve_device(options.device)
        set_cpu_threads(options.torch_threads)
        set_deterministic(device, options.deterministic)
        data = load_dataset(config.section("dataset"))
        config.budget.check_pool(data.pool_size)
        model = build_backbone(config.section("backbone"), data.info)  # shape mismatch → ConfigError now
        _check_dropout(config.section("strategy"), config.section("backbone"), model)
        processes = processes_to_start({**config.values, "device": str(device)})
        threads = (threads_per_process(options.torch_threads, processes) if processes
                   else torch.get_num_threads())  # what each process that runs it will use
        values = {**config.values, "device": str(device), "torch_threads": threads}
        return cls(values, data, config.budget, config.trainer, device, dict(config.values),
                   processes)

    @property
    def root(self) -> Path:
        return Path(self.cfg.get("results_dir", "results")) / str(self.cfg["experiment_name"])

    def plan(self) -> list[SeedPlan]:
        """What each seed's folder holds; refuses (one line) what cannot be trusted."""
        return [plan_seed(self.cfg, self.root, int(seed), self.budget.cycles)
                for seed in self.cfg["seeds"]]


def _check_dropout(strategy: Mapping[str, Any], backbone: Mapping[str, Any],
                   model: torch.nn.Module) -> None:
    """A strategy that samples MC dropout (BALD) on a backbone without dropout fails at its
    first selection, after a cycle of training: refuse it before anything runs."""
    needs = STRATEGIES.get(str(strategy["name"])).needs
    if "mc_probs" in needs and not getattr(model, "has_active_dropout", lambda: False)():
        raise ConfigError(contract(
            "backbone.dropout", f"{strategy['name']} samples MC dropout, so the backbone needs "
            "dropout > 0", backbone.get("dropout"), "a probability in (0, 1), e.g. 0.3"))


def run_experiment(cfg: Mapping[str, Any] | RunConfig) -> pd.DataFrame:
    """Run (or resume, or skip) every seed in ``cfg["seeds"]``; return all rows."""
    exp = Experiment.from_config(cfg)
    return execute(exp, exp.plan())


def execute(exp: Experiment, plans: list[SeedPlan]) -> pd.DataFrame:
    """Run the planned seeds, then print their summary. Ctrl-C becomes `RunInterrupted`,
    whose message says which cycle is saved. A data-parallel run starts its processes
    here (each runs `run_experiment`; rank 0's rows come back) or joins the group the
    environment describes (torchrun, srun)."""
    if exp.processes:
        return start_processes(run_experiment, exp.requested, exp.processes)
    distributed.join_process_group(exp.device)
    main = distributed.is_main()
    progress = bool(exp.cfg.get("progress", True)) and main
    frames = []
    for plan in tqdm(plans, desc="seeds", disable=not progress or len(plans) < 2, unit="seed"):
        logger = build_logger(exp.cfg.get("logger", {}), str(exp.cfg["experiment_name"]))
        try:
            frames.append(run_seed(exp, plan.seed, logger if main else None, plan))
        except KeyboardInterrupt:
            raise RunInterrupted(interruption(plan, exp.budget.cycles)) from None
    rows = pd.concat(frames, ignore_index=True)
    if main:
        print(f"\n{summary([p.folder.path for p in plans])}\nresults: {exp.root}/", flush=True)
    return rows


def run_seed(exp: Experiment, seed: int, logger: RunLogger | None = None,
             plan: SeedPlan | None = None) -> pd.DataFrame:
    """One run: resume from its checkpoint if there is one, skip it if finished."""
    cfg, data, budget = exp.cfg, exp.data, exp.budget
    logger = logger or RunLogger()
    plan = plan or plan_seed(cfg, exp.root, seed, budget.cycles)
    rid, folder = plan.run_id, plan.folder
    main = distributed.is_main()  # every rank reads the plan; rank 0 alone writes
    if plan.finished:
        if main:
            print(f"{rid} is finished; skipped (delete {folder.path} to re-run it)", flush=True)
        logger.skipped(rid, folder.path)
        return plan.rows
    state = plan.state
    if main:
        if state is not None:
            print(f"resuming {rid} at cycle {state.next_cycle}", flush=True)
        folder.start({**cfg, "seed": seed}, plan.identity)
    logger.start(rid, {**cfg, "seed": seed}, folder.path)

    strategy = build_strategy(cfg["strategy"])
    torch.manual_seed(derive_seed(seed, _INIT))
    model = build_backbone(cfg["backbone"], data.info).to(exp.device)
    initial_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if state is None:
        labelled = initial_labelled(data.pool_targets, budget.initial, seed, budget.initial_mode)
        state = LoopState(next_cycle=0, labelled=labelled, picks={"initial": labelled})
    elif state.model_state is not None:
        model.load_state_dict(state.model_state)
    for row in state.rows:
        logger.log_row(row)

    base_row = _base_row(cfg, seed, rid, data, budget, strategy.params())
    batches = budget.batches()
    progress = bool(cfg.get("progress", True)) and main
    bar = tqdm(range(state.next_cycle, budget.cycles + 1), desc=f"{rid} cycles",
               disable=not progress, unit="cycle", initial=state.next_cycle,
               total=budget.cycles + 1)
    for cycle in bar:
        started = time.perf_counter()
        if exp.trainer.reinit:
            model.load_state_dict(initial_weights)
        fit = train(model, data.pool_train, state.labelled, data.info.task, exp.trainer,
                    derive_seed(seed, cycle, _TRAIN), exp.device, progress,
                    strategy.training_addon(state.cache))
        metrics = evaluate(model, data.test, data.test_targets, data.info.task, exp.device,
                           exp.trainer.eval_batch_size, exp.trainer.num_workers)
        row = {**base_row, "cycle": cycle, "n_labelled": len(state.labelled),
               "metric_name": next(iter(metrics)), "metric": next(iter(metrics.values())),
               **metrics, "train_loss": fit.loss, "train_accuracy": fit.train_accuracy,
               "train_epochs": fit.epochs, "train_seconds": fit.seconds,
               "n_selected": 0, "select_seconds": float("nan")}
        if data.val is not None:  # reported only; nothing in the loop selects on it
            row.update({f"val_{k}": v for k, v in evaluate(
                model, data.val, data.val_targets, data.info.task, exp.device,
                exp.trainer.eval_batch_size, exp.trainer.num_workers).items()})
        if cycle < budget.cycles:
            picks, seconds, diagnostics = _select(exp, strategy, model, state, seed, cycle,
                                                  batches[cycle])
            row.update(diagnostics, n_selected=len(picks), select_seconds=seconds)
            state.picks[f"cycle_{cycle}"] = picks
            state.labelled = np.sort(np.concatenate([state.labelled, picks]))
        row["wall_seconds"] = time.perf_counter() - started
        state.rows.append(row)
        state.next_cycle = cycle + 1
        if not exp.trainer.reinit:
            state.model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        if main:
            folder.save(state, finished=cycle == budget.cycles)
        logger.log_row(row)
        bar.set_postfix({row["metric_name"]: f"{row['metric']:.4f}"})
    logger.log_figures(exp.root, folder.path)
    logger.finish()
    return pd.DataFrame(state.rows)


def _select(exp: Experiment, strategy, model, state: LoopState, seed: int, cycle: int,
            budget: int) -> tuple[np.ndarray, float, dict[str, float]]:
    """Rank 0 selects (the other ranks serve its inference requests); all get the picks."""
    data = exp.data
    is_labelled = np.zeros(data.pool_size, dtype=bool)
    is_labelled[state.labelled] = True
    needs = frozenset(strategy.needs)
    outputs = TorchPoolOutputs(model, data.pool_eval, data.info.task, exp.device, needs,
                               exp.trainer.eval_batch_size, exp.trainer.num_workers,
                               derive_seed(seed, cycle, _DROPOUT))
    ctx = SelectionContext(
        labelled=state.labelled, unlabelled=np.flatnonzero(~is_labelled), outputs=outputs,
        needs=needs, rng=np.random.default_rng(derive_seed(seed, cycle, _SELECT)),
        cache=state.cache, task=data.info.task, num_classes=data.info.num_classes,
        cycle=cycle, pool_size=data.pool_size,
        labelled_targets=data.pool_targets[state.labelled])

    def choose() -> tuple[np.ndarray, float, dict[str, float]]:
        started = time.perf_counter()
        strategy.prepare(ctx)
        prepared = time.perf_counter()
        picks = validate_picks(strategy.select(ctx, budget), ctx, budget, strategy.name)
        ctx.record("prepare_seconds", prepared - started)
        return picks, time.perf_counter() - started, ctx.diagnostics

    return distributed.main_only(choose, serve=outputs.serve)


def _base_row(cfg: dict[str, Any], seed: int, rid: str, data: PoolData, budget: Budget,
              params: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": str(cfg["experiment_name"]), "run_id": rid, "setting": setting_hash(cfg),
        "dataset": data.info.name, "backbone": cfg["backbone"]["name"],
        "strategy": cfg["strategy"]["name"],
        "strategy_params": json.dumps(params, sort_keys=True, default=str),
        "seed": seed, "n_pool": data.pool_size, "world_size": distributed.world_size(),
        "budget_initial": budget.initial,
        "budget_batch": str(budget.batch), "budget_cycles": budget.cycles,
        "code_version": code_version(), "config_hash": stable_hash(identity_config(cfg, seed)),
    }
