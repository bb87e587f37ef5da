"""Estimate a preset's compute from per-step times measured on *this* machine.

    python scripts/estimate_compute.py +experiment=alfa_mix/cifar10 --strategies 6
    python scripts/estimate_compute.py +experiment=cluster_margin/cifar10 --strategies 5 --device cuda

Arguments without ``--`` are Hydra overrides (the same as ``run.py``); no data is read.
The backbone of the composed config is timed on random inputs of the dataset's shape:
a training step (forward, backward, optimiser; AMP on CUDA as the trainer does) at
``trainer.batch_size`` and inference at ``trainer.eval_batch_size``. The schedule then
gives the work of one (strategy, seed) run: every cycle trains ``trainer.epochs`` epochs
over the labelled set and runs inference over the test set and the unlabelled pool.

Devices: a data-parallel run (``trainer.devices`` × ``trainer.num_nodes``, or
``--devices N``) has each device train on its share of every global batch and infer on
its share of the pool, so the step is timed at ``batch_size / N`` and inference is divided
by N; the wall-clock figure assumes ideal scaling (gradient all-reduce and the gathering
of outputs are not timed), and device-hours are wall-clock × N.

It is an estimate, and says of what: data loading, augmentation and the strategies' own
selection time are not included (``scripts/bench_selection.py`` times selection), and with
``trainer.stop_at_train_acc`` the epoch count is the cap, so the figure is an upper bound.
Run it on the machine that will do the work: CPU timings say nothing about a GPU's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Training-pool and test sizes of the datasets whose size the config does not state.
KNOWN_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
               "svhn": (73_257, 26_032), "mnist": (60_000, 10_000),
               "emnist_letters": (124_800, 20_800), "digits": (1_438, 359)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +experiment=...")
    parser.add_argument("--strategies", type=int, default=1,
                        help="strategies the comparison runs (multiplies the total)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    parser.add_argument("--devices", type=int, help="devices of one data-parallel run (default: "
                        "trainer.devices × trainer.num_nodes of the config)")
    parser.add_argument("--pool", type=int, help="training-pool size (default: known or "
                        "dataset.pool_subset / max_pool)")
    parser.add_argument("--test", type=int, help="test-set size (default: known or max_test)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up ones")
    args = parser.parse_args(argv)

    from alharness.errors import HarnessError

    try:
        print(estimate(args))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


def pool_and_test(dataset: dict, args: argparse.Namespace) -> tuple[int, int]:
    from alharness.errors import ConfigError

    pool, test = KNOWN_SIZES.get(dataset["name"], (None, None))
    pool = args.pool or dataset.get("pool_subset") or dataset.get("max_pool") or pool
    test = args.test or dataset.get("max_test") or test
    if pool is None or test is None:
        raise ConfigError(f"the size of dataset {dataset['name']!r} is not in the config; "
                          "give --pool N --test N")
    return int(pool) - int(dataset.get("val_size") or 0), int(test)


def time_steps(step, count: int, sync) -> float:
    """Seconds per call of ``step`` (median of ``count`` after two warm-up calls)."""
    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def estimate(args: argparse.Namespace) -> str:
    import torch

    from alharness.config.compose import compose_once
    from alharness.config.schema import validate_config
    from alharness.errors import ConfigError
    from alharness.info import DatasetInfo
    from alharness.loop.launch import devices_per_run
    from alharness.models import build_backbone
    from alharness.training.device import resolve_device
    from alharness.training.trainer import loss_function

    config = validate_config(compose_once(args.overrides))  # one-line errors
    cfg, trainer, budget = config.values, config.trainer, config.budget
    dataset = cfg["dataset"]
    shape = dataset.get("input_shape")
    classes = dataset.get("num_classes") or dataset.get("top_k")
    if not shape or not classes:
        raise ConfigError(f"dataset {dataset['name']!r} states no input_shape/num_classes "
                          "in its config (feature datasets take them from the file)")
    info = DatasetInfo(dataset["name"], dataset["task"], int(classes), tuple(shape))
    device = resolve_device(args.device)
    model = build_backbone(cfg["backbone"], info).to(device)
    pool, test = pool_and_test(dataset, args)
    devices = args.devices or devices_per_run(trainer, device)
    if devices < 1:
        raise ConfigError(f"--devices {devices}: give a positive count")
    step_batch = math.ceil(trainer.batch_size / devices)  # each device's share of a batch

    amp = trainer.amp and device.type == "cuda"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    x = torch.randn(step_batch, *info.input_shape, device=device)
    y = (torch.randint(0, 2, (len(x), info.num_classes), device=device).float()
         if info.task == "multilabel" else torch.randint(0, info.num_classes, (len(x),),
                                                         device=device))
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-6)
    criterion = loss_function(info.task)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def train_step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=amp):
            loss = criterion(model(x).float(), y).mean()
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    infer_batch = min(trainer.eval_batch_size, 256 if device.type == "cpu" else 1024)
    xe = torch.randn(infer_batch, *info.input_shape, device=device)

    def infer_step() -> None:
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            model(xe)

    model.train()
    step_s = time_steps(train_step, args.steps, sync)
    model.eval()
    per_image_s = time_steps(infer_step, args.steps, sync) / infer_batch

    labelled, train_s, infer_s = budget.initial, 0.0, 0.0
    batches = budget.batches()
    for cycle in range(budget.cycles + 1):
        train_s += trainer.epochs * math.ceil(labelled / trainer.batch_size) * step_s
        unlabelled = pool - labelled if cycle < budget.cycles else 0
        infer_s += (test + unlabelled) * per_image_s / devices
        labelled += batches[cycle] if cycle < budget.cycles else 0
    run_h = (train_s + infer_s) / 3600
    seeds = len(cfg["seeds"])
    cap = " (cap; stops earlier at train acc " \
          f"{trainer.stop_at_train_acc})" if trainer.stop_at_train_acc else ""
    lines = [
        f"preset          {cfg['experiment_name']}: {dataset['name']} × {cfg['backbone']['name']}"
        f" × {cfg['strategy']['name']}",
        f"device          {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})",
        f"schedule        {budget.initial} + {batches[0] if batches else 0} × {budget.cycles}"
        f", {trainer.epochs} epochs{cap}, pool {pool:,}, test {test:,}",
        f"devices         {devices} (data-parallel: each trains on {step_batch} of every batch "
        f"of {trainer.batch_size} and infers on 1/{devices} of the images; ideal scaling assumed)",
        f"train step      {step_s * 1e3:.1f} ms at batch {step_batch}"
        f"{' (AMP)' if amp else ''}; first epoch {math.ceil(budget.initial / trainer.batch_size) * step_s:.2f} s,"
        f" last {math.ceil(labelled / trainer.batch_size) * step_s:.2f} s",
        f"inference       {per_image_s * 1e6:.0f} µs / image",
        f"one run         {run_h:.2f} h (training {train_s / 3600:.2f} h, inference "
        f"{infer_s / 3600:.2f} h) = {run_h * devices:.2f} device-hours",
        f"all runs        {run_h * seeds * args.strategies:.1f} h = {seeds} seeds × "
        f"{args.strategies} strategies × one run (selection time not included)"
        f"{f'; {run_h * devices * seeds * args.strategies:.1f} device-hours' if devices > 1 else ''}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
