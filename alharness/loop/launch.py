"""One run, several processes: start them here, or find the ones already started.

A data-parallel run (``trainer.devices`` × ``trainer.num_nodes`` > 1) gets its processes
in one of three ways, and the rest of the harness does not care which
(`alharness.training.distributed` joins whatever group the environment describes):

- ``python run.py trainer.devices=N``: this module starts N processes on this machine
  with torch's elastic launcher (the engine behind ``torchrun``), gloo on the CPU, NCCL on
  CUDA, and returns rank 0's rows. The cores are shared among the CPU processes
  (``torch_threads`` each, or cores / N). Single-threaded CPU processes are forked (a fork
  starts 100× faster than a fresh interpreter, which must import torch again) unless this
  process already started numba's thread pool; the others are spawned, since a forked
  child hangs in OpenMP threads its parent already used, and CUDA cannot be forked at all.
- ``torchrun --nproc_per_node=N run.py …`` (any node count): torchrun exports ``RANK``,
  ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``; nothing is started here.
- ``srun`` with one task per device (e.g. Hydra's submitit launcher with
  ``tasks_per_node``): submitit's ``TorchDistributedEnvironment`` turns SLURM's variables
  into the same ones; nothing is started here.

One Hydra job is one distributed run: every process runs the same job, so a ``-m`` sweep
under torchrun/srun walks its jobs in the same order on every rank, one distributed run
after the other.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from alharness.errors import ConfigError, HarnessError
from alharness.training.device import resolve_device
from alharness.training.trainer import TrainerConfig


def processes_to_start(cfg: Mapping[str, Any]) -> int:
    """How many processes this call must start for ``cfg`` (0: it is one of them already,
    or the run has one process). Checks the layout against what was started."""
    trainer = TrainerConfig.from_mapping(cfg["trainer"])
    device = resolve_device(str(cfg.get("device", "auto")))
    wanted = devices_per_run(trainer, device)
    if wanted > 1 and device.type == "cuda" and device.index is not None:
        raise ConfigError(f"device={device} with {wanted} processes: each process takes the GPU "
                          "of its local rank; use device=auto or device=cuda")
    if wanted > 1 and trainer.sync_batchnorm and device.type != "cuda":
        raise ConfigError("trainer.sync_batchnorm needs CUDA (torch's SyncBatchNorm does not run "
                          "on the CPU); set it false")
    started = _started_processes()
    if started > 1:
        if trainer.devices != "auto" and started != wanted:
            raise ConfigError(
                f"this run was started as {started} processes (torchrun/srun) but "
                f"trainer.devices × trainer.num_nodes = {wanted}; make them agree "
                "(devices per node) or set trainer.devices=auto")
        return 0
    if wanted > 1 and trainer.num_nodes > 1:
        raise ConfigError(f"trainer.num_nodes={trainer.num_nodes}: start the processes on every "
                          "node with torchrun or srun (docs/scaling.md, Distributed runs); run.py starts "
                          "processes on one node only")
    return wanted if wanted > 1 else 0


def devices_per_run(trainer: TrainerConfig, device: torch.device) -> int:
    """Processes of one run: ``trainer.devices`` per node (``auto``: every visible GPU, 1
    on the CPU) × ``trainer.num_nodes``."""
    per_node = trainer.devices
    if per_node == "auto":
        per_node = torch.cuda.device_count() if device.type == "cuda" else 1
    return int(per_node) * trainer.num_nodes


def threads_per_process(requested: int | None, count: int) -> int:
    """CPU threads of each of ``count`` processes started here: ``torch_threads``, or the
    cores shared among them. Part of the run's identity on the CPU, so the launching
    process plans the run folder with it too."""
    return int(requested or max(1, torch.get_num_threads() // count))


def _started_processes() -> int:
    """The world size of an already started run (torchrun, or an srun step whose SLURM
    variables submitit exports as torch's), else 1."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    step_tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))  # set by srun, not sbatch
    if step_tasks > 1:
        if int(os.environ.get("SLURM_NTASKS", step_tasks)) != step_tasks:
            raise ConfigError(f"this srun step runs {step_tasks} of the job's "
                              f"{os.environ['SLURM_NTASKS']} tasks; run one step over all tasks "
                              "(one per device), or use torchrun")
        from submitit.helpers import TorchDistributedEnvironment

        os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")  # a plain srun step, too
        env = TorchDistributedEnvironment()  # parses SLURM's node list and ranks
        env.master_addr = os.environ.get("MASTER_ADDR", env.master_addr)
        env.export(set_cuda_visible_devices=False, overwrite=True)
        return step_tasks
    return 1


def start_processes(fn: Callable[[dict[str, Any]], Any], cfg: dict[str, Any], count: int) -> Any:
    """``fn(cfg)`` in ``count`` new processes on this machine; rank 0's return value.

    A `HarnessError` in any process is raised here (the lowest rank's), so ``run.py``
    prints it as one line; any other failure raises torch's ``ChildFailedError``, which
    carries each failed rank's traceback.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    cuda = resolve_device(str(cfg.get("device", "auto"))).type == "cuda"
    threads = threads_per_process(cfg.get("torch_threads"), count)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1,
                          start_method="fork" if _fork_safe(threads, cuda) else "spawn")
    errors = Path(tempfile.mkdtemp(prefix="alharness-"))
    sys.stdout.flush()
    sys.stderr.flush()  # a fork copies unflushed output
    try:
        with _quiet_launcher():
            return elastic_launch(config, _run_rank)(fn, cfg, threads, str(errors))[0]
    except ChildFailedError:
        raised = sorted(errors.glob("*.pickle"), key=lambda p: int(p.stem))
        if raised:
            raise pickle.loads(raised[0].read_bytes()) from None
        raise
    finally:
        shutil.rmtree(errors, ignore_errors=True)


def _fork_safe(threads: int, cuda: bool) -> bool:
    """Whether a forked child can work: one CPU thread, no CUDA, and no OpenMP pool of
    numba's compiled kernels (HAC, k-means++) started in this process yet — a forked
    child that enters a parallel region its parent's pool served hangs (e.g. a sweep
    whose earlier job ran Cluster-Margin here). Unknown numba internals: spawn."""
    if threads != 1 or cuda:
        return False
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - numba is a dependency
        return True
    return getattr(parallel, "_is_initialized", True) is False


def _run_rank(fn: Callable[[dict[str, Any]], Any], cfg: dict[str, Any], threads: int,
              errors: str) -> Any:
    """One started process: ``fn(cfg)`` on ``threads`` CPU threads, its value from rank 0
    only; a `HarnessError` is left in ``errors`` for the launching process before the
    process fails."""
    rank = int(os.environ["RANK"])
    torch.set_num_threads(threads)
    try:
        value = fn(cfg)
    except HarnessError as exc:
        Path(errors, f"{rank}.pickle").write_bytes(pickle.dumps(exc))
        raise
    return value if rank == 0 else None


@contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The elastic agent logs every rendezvous and failure; the run reports its own."""
    loggers = [logging.getLogger(name) for name in
               ("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
