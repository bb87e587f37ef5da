"""Shared fixtures: tiny configs composed the way ``run.py`` composes them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"

# Tiny models gain nothing from threads, and CI's 2 cores are shared with the subprocesses
# (oversubscribed OpenMP threads make a small training step tens of times slower).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Each test starts on one torch thread, whatever the test before it did: the thread
    count is part of a run's identity, so a leaked count (a test's ``torch_threads``, or
    OpenMP state shared with numba and faiss) would change later tests' run ids."""
    torch.set_num_threads(1)
    yield
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

#: Overrides that keep an end-to-end run to a second or two on 2 CPU cores.
FAST = ["seeds=[0]", "budget.initial=20", "budget.batch=10", "budget.cycles=2",
        "trainer.epochs=3", "progress=false", "device=cpu"]


def compose_config(overrides: list[str], results_dir: Path) -> dict:
    """The resolved config dict ``run.py`` would pass to the runner."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, f"results_dir={results_dir}"])
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


@pytest.fixture
def make_config(tmp_path):
    """``make_config(["strategy=entropy"])`` → resolved dict writing into a tmp results dir."""

    def make(overrides: list[str] = (), fast: bool = True) -> dict:
        return compose_config([*(FAST if fast else []), *overrides], tmp_path / "results")

    return make


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` as a user would; returns the finished process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_script(name: str):
    """``scripts/<name>.py`` as a module, run in this process (a fresh interpreter per
    script would cost more than the work)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_until_killed(cfg: dict, monkeypatch, training_call: int) -> None:
    """Run ``cfg`` and kill it (KeyboardInterrupt, as Ctrl-C would) when the runner starts
    its ``training_call``-th training; ``train`` is restored afterwards."""
    from alharness.loop import runner
    from alharness.loop.runner import run_experiment

    real_train, calls = runner.train, []

    def train_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == training_call:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner, "train", train_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)
    monkeypatch.setattr(runner, "train", real_train)
