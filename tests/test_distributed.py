"""One run over two CPU processes (gloo) against the same run in one process.

The processes are forked from the test process (`alharness.loop.launch`), so patches made
here reach every rank. The NCCL/CUDA paths (spawned ranks, a GPU per local rank, AMP under
DDP, SyncBatchNorm) need GPUs and are not run here.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.utils.data import DataLoader

from alharness.data import load_dataset
from alharness.errors import ConfigError, SelectionError
from alharness.loop import launch, run_folder
from alharness.loop import runner as runner_module
from alharness.loop.launch import processes_to_start, start_processes
from alharness.loop.runner import Experiment, run_experiment
from alharness.models import build_backbone
from alharness.strategies.dfal import deepfool_scores
from alharness.training import distributed
from alharness.training.inference import TorchPoolOutputs, evaluate
from alharness.training.sharding import GlobalBatchSampler, batch_shard
from tests.conftest import FAST, compose_config

#: An MLP without batch norm or dropout, so two ranks must take one process's steps. Global
#: batches of 19 over 20/30/40 labelled points: uneven halves (10 + 9) and, at 20 points, a
#: last batch of one row, for which rank 1 trains on a stand-in row of weight 0.
DDP_RUN = [*FAST, "backbone=mlp", "backbone.dropout=0", "trainer.batch_size=19", "strategy=margin"]
VOLATILE = ["train_seconds", "select_seconds", "prepare_seconds", "wall_seconds", "code_version"]


def run_folder_of(results: Path) -> Path:
    (rows,) = Path(results).rglob("rows.csv")
    return rows.parent


def picks(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "picks.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module", autouse=True)
def _forked_ranks():
    """Fork the ranks even though earlier tests started numba's thread pool in this process
    (`alharness.loop.launch` would spawn then): these ranks never run numba's kernels, and
    the patches below must reach them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(launch, "_fork_safe", lambda threads, cuda: threads == 1 and not cuda)
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same run in one process and in two; every results-file write of the two-process
    run is logged with the writing process."""
    base = tmp_path_factory.mktemp("ddp")
    one = compose_config(DDP_RUN, base / "one")
    two = compose_config([*DDP_RUN, "trainer.devices=2"], base / "two")
    run_experiment(one)
    writes = base / "writes.log"
    real_write = run_folder._atomic_write

    def logged_write(path: Path, data: bytes) -> None:
        with open(writes, "a") as log:
            log.write(f"{os.getpid()} {Path(path).name}\n")
        real_write(path, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_folder, "_atomic_write", logged_write)
        run_experiment(two)
    return {"one": run_folder_of(base / "one"), "two": run_folder_of(base / "two"),
            "two_cfg": two, "writes": [line.split() for line in writes.read_text().splitlines()]}


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(runs):
    one, two = pd.read_csv(runs["one"] / "rows.csv"), pd.read_csv(runs["two"] / "rows.csv")
    assert one["world_size"].tolist() == [1, 1, 1] and two["world_size"].tolist() == [2, 2, 2]
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=1e-5)
    np.testing.assert_array_equal(two["train_accuracy"], one["train_accuracy"])
    np.testing.assert_allclose(two["metric"], one["metric"], rtol=1e-6)
    assert runs["one"].name == runs["two"].name  # the process count is not part of the run id
    for key, value in picks(runs["one"]).items():
        np.testing.assert_array_equal(picks(runs["two"])[key], value)


def test_the_launcher_plans_the_folder_its_processes_write(tmp_path, monkeypatch):
    """The run id holds the CPU threads per process, so the launching process must plan
    (and refuse, in one line, before anything is written) with the count its processes
    will use: the cores shared among them, not its own."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    cfg = compose_config([*DDP_RUN, "trainer.devices=2", "torch_threads=null"], tmp_path)
    exp = Experiment.from_config(cfg)
    assert exp.processes == 2 and exp.cfg["torch_threads"] == 2
    assert exp.requested["torch_threads"] is None  # each process resolves it again
    alone = Experiment.from_config({**cfg, "trainer": {**cfg["trainer"], "devices": 1}})
    assert alone.processes == 0 and alone.cfg["torch_threads"] == 4
    assert exp.plan()[0].run_id != alone.plan()[0].run_id


def test_rank_0_alone_writes_each_results_file_once_per_cycle(runs):
    writers = {pid for pid, _ in runs["writes"]}
    assert len(writers) == 1 and writers != {str(os.getpid())}  # one rank, not the launcher
    assert Counter(name for _, name in runs["writes"]) == {
        "config.yaml": 1, "identity.json": 1, "rows.csv": 3, "picks.npz": 3, "state.pt": 3,
        "status.json": 3}
    assert sorted(p.name for p in runs["two"].iterdir()) == [
        "config.yaml", "identity.json", "picks.npz", "rows.csv", "state.pt", "status.json"]
    assert json.loads((runs["two"] / "status.json").read_text())["status"] == "finished"


def test_killed_two_process_run_resumes_to_the_same_table(runs, tmp_path, monkeypatch):
    cfg = {**runs["two_cfg"], "results_dir": str(tmp_path)}
    trained, kill = tmp_path / "trained.log", tmp_path / "kill"
    real_train = runner_module.train

    def train_or_die(*args, **kwargs):
        if distributed.rank() == 0:
            with open(trained, "a") as log:
                log.write("cycle\n")
            if kill.exists() and len(trained.read_text().split()) == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # rank 0 dies during cycle 1's training
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner_module, "train", train_or_die)
    kill.touch()
    with pytest.raises(ChildFailedError):
        run_experiment(cfg)
    folder = run_folder_of(tmp_path)
    assert json.loads((folder / "status.json").read_text())["cycles_done"] == 1

    kill.unlink()
    trained.unlink()
    run_experiment(cfg)
    assert len(trained.read_text().split()) == 2  # cycles 1 and 2 only
    stable = [pd.read_csv(f / "rows.csv").drop(columns=VOLATILE) for f in (folder, runs["two"])]
    pd.testing.assert_frame_equal(*stable)
    for key, value in picks(runs["two"]).items():
        np.testing.assert_array_equal(picks(folder)[key], value)


def pool_outputs(cfg: dict) -> dict:
    """Every kind of pool output of one seeded small CNN (batch norm, dropout) on the digits
    pool, computed by rank 0 with the other ranks serving; and the test metrics."""
    distributed.join_process_group(torch.device("cpu"))
    data = load_dataset(cfg["dataset"])
    torch.manual_seed(0)
    model = build_backbone(cfg["backbone"], data.info).eval()
    cpu = torch.device("cpu")
    outputs = TorchPoolOutputs(model, data.pool_eval, "multiclass", cpu,
                               frozenset({"probs", "embeddings", "mc_probs", "inputs"}),
                               batch_size=128, seed=7)
    every, subset = np.arange(data.pool_size), np.arange(5, data.pool_size, 4)

    def work() -> dict:
        return {"probs": outputs.probs(every), "embeddings": outputs.embeddings(every),
                "mc_probs": outputs.mc_probs(subset[:300], passes=3),  # 3 batches on 2 ranks
                "deepfool": outputs.map_inputs(partial(deepfool_scores, max_iter=3,
                                                       overshoot=0.02, candidates=4), subset, 64)}

    found = distributed.main_only(work, serve=outputs.serve)
    return {**found, "metrics": evaluate(model, data.test, data.test_targets, "multiclass", cpu, 128)}


def test_sharded_pool_inference_equals_one_process_bit_for_bit(tmp_path):
    cfg = compose_config(FAST, tmp_path)
    one = pool_outputs(cfg)
    two = start_processes(pool_outputs, cfg, 2)
    assert one["mc_probs"].shape == (3, 300, 10) and len(one["deepfool"]) == 2
    for kind in ("probs", "embeddings", "mc_probs"):
        np.testing.assert_array_equal(two[kind], one[kind], err_msg=kind)
    for mine, reference in zip(two["deepfool"], one["deepfool"], strict=True):
        np.testing.assert_array_equal(mine, reference)
    assert two["metrics"] == one["metrics"]


def fail_in_rank_0_selection(cfg: dict) -> None:
    distributed.join_process_group(torch.device("cpu"))
    distributed.main_only(lambda: (_ for _ in ()).throw(SelectionError("rank 0 cannot select")))


def test_an_error_of_rank_0_stops_every_rank_and_reaches_the_launcher_as_itself():
    with pytest.raises(SelectionError, match="^rank 0 cannot select$"):
        start_processes(fail_in_rank_0_selection, {"device": "cpu"}, 2)


def test_one_process_draws_the_batches_of_a_shuffling_data_loader():
    n, batch = 23, 5
    reference = DataLoader(range(n), batch_size=batch, shuffle=True,
                           generator=torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    sharded = DataLoader(range(n), batch_sampler=GlobalBatchSampler(n, batch, generator),
                         generator=generator)
    for _ in range(2):  # two epochs: the generator is consumed the same way
        assert [b.tolist() for b in sharded] == [b.tolist() for b in reference]


def test_ranks_split_every_global_batch_and_weight_their_losses(monkeypatch):
    n, batch, world = 21, 8, 3
    parts = []
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        sampler = GlobalBatchSampler(n, batch, torch.Generator().manual_seed(0))
        parts.append((list(sampler), [sampler.share(step) for step in range(len(sampler))]))
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    whole = list(GlobalBatchSampler(n, batch, torch.Generator().manual_seed(0)))
    for step, global_batch in enumerate(whole):  # batches of 8, 8, 5
        real = [parts[r][0][step][:parts[r][1][step][0]] for r in range(world)]
        assert sorted(sum(real, [])) == sorted(global_batch)
        assert {parts[r][1][step][1] for r in range(world)} == {len(global_batch) / world}
    assert [parts[r][1][2][0] for r in range(world)] == [2, 2, 1]
    monkeypatch.setattr(distributed, "world_size", lambda: 8)
    monkeypatch.setattr(distributed, "rank", lambda: 7)
    stand_in = GlobalBatchSampler(n, batch, torch.Generator().manual_seed(0))
    assert stand_in.share(2) == (0, 5 / 8) and len(list(stand_in)[2]) == 1  # 5 rows, 8 ranks


def test_inference_shards_are_whole_batches_in_pool_order(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    shards = []
    for r in range(3):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shards.append(batch_shard(1000, 128))  # 8 batches: 2, 3, 3
    assert shards == [(slice(0, 256), 0), (slice(256, 640), 2), (slice(640, 1000), 5)]


@pytest.fixture
def clean_env(monkeypatch):
    """A copy of the environment, so what the launcher exports does not leak."""
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE"))})
    return os.environ


@pytest.mark.parametrize(("trainer", "env", "message"), [
    ({"num_nodes": 2, "devices": 2}, {}, "start the processes on every node with torchrun"),
    ({"devices": 1}, {"RANK": "0", "WORLD_SIZE": "2"}, "started as 2 processes"),
    ({"devices": 2, "sync_batchnorm": True}, {}, "sync_batchnorm needs CUDA"),
    ({"devices": 0}, {}, "trainer.devices: out of range"),
    ({"devices": 2}, {"SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "4"}, "one step over all"),
])
def test_a_process_layout_that_cannot_work_is_a_one_line_error(clean_env, trainer, env, message):
    clean_env.update(env)
    with pytest.raises(ConfigError, match=message):
        processes_to_start({"device": "cpu", "trainer": trainer})


def test_started_processes_are_joined_not_started_again(clean_env):
    assert processes_to_start({"device": "cpu", "trainer": {"devices": 2}}) == 2
    clean_env.update(RANK="1", WORLD_SIZE="2")  # torchrun
    assert processes_to_start({"device": "cpu", "trainer": {"devices": 2}}) == 0
    assert processes_to_start({"device": "cpu", "trainer": {"devices": "auto"}}) == 0


def test_an_srun_step_of_one_task_per_device_exports_torch_ranks(clean_env):
    clean_env.update(SLURM_JOB_ID="77", SLURM_STEP_NUM_TASKS="4", SLURM_NTASKS="4",
                     SLURM_JOB_NUM_NODES="2", SLURM_NODEID="1", SLURM_PROCID="3",
                     SLURM_LOCALID="1", SLURM_JOB_NODELIST="gpu[07-08]")
    cfg = {"device": "cpu", "trainer": {"devices": 2, "num_nodes": 2}}
    assert processes_to_start(cfg) == 0
    assert (clean_env["RANK"], clean_env["WORLD_SIZE"], clean_env["LOCAL_RANK"]) == ("3", "4", "1")
    assert clean_env["MASTER_ADDR"] == "gpu07"

