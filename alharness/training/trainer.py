"""Train a backbone on the labelled set; evaluate it on the test set.

The trainer knows nothing of strategies. A strategy that must learn something alongside
the classifier (e.g. Learning Loss) passes a `TrainingAddon`; the trainer only calls it.

With several processes (``trainer.devices``/``num_nodes``, see
`alharness.training.distributed`) the model is wrapped in DistributedDataParallel and each
rank trains on its share of every global batch (`alharness.training.sharding`), so the
steps are those of one process with the same ``batch_size``; the epoch's loss and
accuracy, and with them the ``stop_at_train_acc`` decision, are summed over all ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, Protocol

import numpy as np
import torch
from annotated_types import Ge, Gt, Le
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from tqdm.auto import tqdm

from alharness.bounds import Count, NonNegative
from alharness.errors import HarnessError
from alharness.training import distributed
from alharness.training.device import derive_seed
from alharness.training.sharding import GlobalBatchSampler


class TrainingError(HarnessError):
    """Training diverged (NaN/inf loss)."""


class TrainingAddon(Protocol):
    """Something a strategy trains jointly with the classifier (`Strategy.training_addon`).

    `train` calls `attach` once before it builds the optimiser, `extra_loss` for every
    batch right after the model's forward pass on it, and `detach` when training ends
    (also on error).
    """

    def attach(self, model: nn.Module, example: torch.Tensor, cfg: TrainerConfig) -> None:
        """Hook into ``model`` (e.g. forward hooks on intermediate layers) and build the
        add-on's modules on ``example``'s device. ``example`` is one training input (a batch
        of one) for shape inference; ``cfg.epochs`` schedules epoch-dependent behaviour and
        ``cfg.reinit`` says whether the runner resets the backbone this cycle (an add-on
        re-creates its own weights then, and otherwise carries them over)."""

    def parameters(self) -> list[nn.Parameter]:
        """Extra parameters for the optimiser (called after `attach`)."""

    def extra_loss(self, model: nn.Module, per_example_loss: torch.Tensor, epoch: int) -> torch.Tensor:
        """A scalar added to the classification loss for the current batch."""

    def detach(self) -> None:
        """Remove whatever `attach` hooked into the model."""


@dataclass
class TrainerConfig:
    """``configs/trainer/*.yaml``; the type hints are the schema the config is checked
    against (`alharness.config.sections`). ``reinit`` restores the run's initial weights
    every cycle (ALFA-Mix / BADGE protocol); ``stop_at_train_acc`` ends training once an
    epoch's training accuracy reaches it (BADGE's rule, 0.99 in ALFA-Mix). ``devices`` (per
    node, or ``auto``: every visible GPU) and ``num_nodes`` make one run data-parallel;
    ``sync_batchnorm`` computes batch-norm statistics over the global batch (CUDA only)."""

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: Annotated[float, Gt(0)] = 1e-3
    momentum: Annotated[float, Ge(0)] = 0.9
    weight_decay: Annotated[float, Ge(0)] = 0.0
    epochs: Count = 30
    batch_size: Count = 64
    lr_schedule: Literal["none", "cosine"] = "none"
    stop_at_train_acc: Annotated[float, Gt(0), Le(1)] | None = None
    reinit: bool = True
    amp: bool = True
    num_workers: NonNegative = 0
    eval_batch_size: Count = 512
    devices: Count | Literal["auto"] = 1
    num_nodes: Count = 1
    sync_batchnorm: bool = False

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> TrainerConfig:
        """Validated against the fields' type hints; a bad value is a one-line `ConfigError`."""
        from alharness.config.sections import build_dataclass

        return build_dataclass(cls, cfg, "trainer")


@dataclass
class TrainResult:
    epochs: int
    loss: float
    train_accuracy: float
    seconds: float


def loss_function(task: str) -> nn.Module:
    """Per-example loss: cross-entropy (multi-class) or per-class BCE summed (multi-label)."""
    if task == "multilabel":
        bce = nn.BCEWithLogitsLoss(reduction="none")
        return _SumOverClasses(bce)
    return nn.CrossEntropyLoss(reduction="none")


class _SumOverClasses(nn.Module):
    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, targets).sum(dim=1)


def _correct(logits: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    if task == "multilabel":  # exact-match of the thresholded label set
        return float(((logits > 0) == (targets > 0.5)).all(dim=1).sum())
    return float((logits.argmax(dim=1) == targets).sum())


def _optimiser(params: list[nn.Parameter], cfg: TrainerConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def loader(dataset: Dataset, indices: np.ndarray | None, batch_size: int | None,
           device: torch.device, num_workers: int = 0,
           batch_sampler: Sampler[list[int]] | None = None,
           generator: torch.Generator | None = None) -> DataLoader:
    """A DataLoader over ``dataset[indices]`` in order (``batch_size``) or in the batches of
    ``batch_sampler``, with pinned memory on CUDA; workers, if any, live for all epochs of
    one call (not re-spawned per epoch) and draw per-rank random streams."""
    subset = dataset if indices is None else Subset(dataset, np.asarray(indices).tolist())
    batching = {"batch_size": batch_size} if batch_sampler is None else {"batch_sampler": batch_sampler}
    return DataLoader(subset, **batching, generator=generator, num_workers=num_workers,
                      pin_memory=device.type == "cuda", persistent_workers=num_workers > 0,
                      worker_init_fn=_worker_init(distributed.rank()))


def _worker_init(rank: int) -> Callable[[int], None] | None:
    """Loader workers of every rank get the same base seed from the shared generator; give
    ranks > 0 their own augmentation streams (rank 0 keeps torch's)."""
    return None if rank == 0 else partial(_reseed_worker, rank)


def _reseed_worker(rank: int, worker_id: int) -> None:
    torch.manual_seed(derive_seed(torch.initial_seed(), rank))


def train(model: nn.Module, dataset: Dataset, indices: np.ndarray, task: str,
          cfg: TrainerConfig, seed: int, device: torch.device, progress: bool = False,
          addon: TrainingAddon | None = None) -> TrainResult:
    """Train ``model`` in place on ``dataset[indices]``; deterministic given ``seed`` (and,
    with several processes, the number of them)."""
    start = time.perf_counter()
    torch.manual_seed(distributed.rank_seed(seed))
    generator = torch.Generator().manual_seed(seed)  # the same on every rank: one global order
    batches = GlobalBatchSampler(len(indices), cfg.batch_size, generator)
    data = loader(dataset, indices, None, device, cfg.num_workers, batch_sampler=batches,
                  generator=generator)
    model.to(device).train()
    if cfg.sync_batchnorm and distributed.world_size() > 1:
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the layers inside `model`
    if addon is not None:
        addon.attach(model, dataset[int(indices[0])][0].unsqueeze(0).to(device), cfg)
    try:
        return _fit(model, data, batches, task, cfg, device, progress, addon, start)
    finally:
        if addon is not None:
            addon.detach()


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    if distributed.world_size() == 1:
        return model
    gpu = [torch.cuda.current_device()] if device.type == "cuda" else None  # this rank's GPU
    return DistributedDataParallel(model, device_ids=gpu)


def _fit(model: nn.Module, data: DataLoader, batches: GlobalBatchSampler, task: str,
         cfg: TrainerConfig, device: torch.device, progress: bool,
         addon: TrainingAddon | None, start: float) -> TrainResult:
    net = _data_parallel(model, device)
    addon_params = list(addon.parameters()) if addon else []
    optimiser = _optimiser(list(model.parameters()) + addon_params, cfg)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, cfg.epochs)
                if cfg.lr_schedule == "cosine" else None)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    criterion = loss_function(task)
    loss_mean, acc, epoch = float("nan"), 0.0, 0
    bar = tqdm(range(cfg.epochs), desc="  train", leave=False, disable=not progress, unit="ep")
    for epoch in bar:
        total_loss, correct, seen = 0.0, 0.0, 0
        for step, (x, y) in enumerate(data):
            rows, divisor = batches.share(step)  # rows = len(x), or 0 for a stand-in row
            weight = 1.0 if rows else 0.0
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=use_amp):
                logits = net(x)
                per_example = criterion(logits.float(), y)
                loss = per_example.sum() * weight / divisor  # = the mean with one process
                if addon is not None:
                    loss = loss + addon.extra_loss(model, per_example, epoch) * weight
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training loss became {loss.item()} at epoch {epoch} (lr={cfg.lr}); "
                    "lower trainer.lr or check the data for NaNs")
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            distributed.average_gradients(addon_params)
            scaler.step(optimiser)
            scaler.update()
            if rows:
                total_loss += float(per_example.detach().sum())  # the classifier's loss only
                correct += _correct(logits.detach(), y, task)
                seen += rows
        if schedule is not None:
            schedule.step()
        total_loss, correct, seen = distributed.all_sum([total_loss, correct, seen])
        loss_mean, acc = total_loss / max(seen, 1), correct / max(seen, 1)
        bar.set_postfix(loss=f"{loss_mean:.3f}", acc=f"{acc:.3f}")
        if cfg.stop_at_train_acc is not None and acc >= cfg.stop_at_train_acc:
            break
    model.eval()
    return TrainResult(epochs=epoch + 1, loss=loss_mean, train_accuracy=acc,
                       seconds=time.perf_counter() - start)
