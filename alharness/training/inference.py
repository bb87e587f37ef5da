"""Model outputs over the pool, computed once per cycle and only when a strategy needs them.

`TorchPoolOutputs` is the runner's implementation of the strategies' `PoolOutputs`: the
model in eval mode, the pool with *test* transforms, probabilities and embeddings from one
pass, MC-dropout samples and input batches (for strategies that run the model) on demand.

With several processes, every computation over the pool (and the test-set evaluation) is
sharded: each rank runs whole evaluation batches of its own contiguous part
(`alharness.training.sharding.batch_shard`) and rank 0 gathers the rows in pool order,
bit-identical to one process. Selection runs on rank 0; the other ranks serve its
requests (`alharness.training.distributed.main_only` with `TorchPoolOutputs.serve`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from alharness.errors import SelectionError
from alharness.metrics import task_metrics
from alharness.models.base import mc_dropout
from alharness.ops.batches import stack_batch_outputs
from alharness.training import distributed
from alharness.training.device import derive_seed
from alharness.training.sharding import batch_shard
from alharness.training.trainer import TrainingError, loader


def to_probs(logits: torch.Tensor, task: str) -> torch.Tensor:
    return torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=1)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, indices: np.ndarray | None, task: str,
            device: torch.device, batch_size: int = 512,
            want: Iterable[str] = ("probs",), num_workers: int = 0) -> dict[str, np.ndarray]:
    """``{"probs": (n, C), "embeddings": (n, d)}`` (as asked) in eval mode, float32."""
    want = set(want)
    model.to(device).eval()
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in want}
    use_amp = device.type == "cuda"
    for x, _ in loader(dataset, indices, batch_size, device, num_workers):
        with torch.autocast(device.type, enabled=use_amp):
            z = model.features(x.to(device, non_blocking=True))
            logits = model.head(z)
        if "embeddings" in want:
            chunks["embeddings"].append(z.float().cpu().numpy())
        if "probs" in want:
            chunks["probs"].append(to_probs(logits.float(), task).cpu().numpy())
    return {k: np.concatenate(v) if v else np.empty((0, 0), np.float32) for k, v in chunks.items()}


def predict_sharded(model: nn.Module, dataset: Dataset, indices: np.ndarray | None, task: str,
                    device: torch.device, batch_size: int = 512,
                    want: Iterable[str] = ("probs",),
                    num_workers: int = 0) -> dict[str, np.ndarray] | None:
    """`predict` with each rank taking its shard of whole batches; every rank must call it.
    The outputs in ``indices`` order on rank 0, None on the others."""
    if distributed.world_size() == 1:
        return predict(model, dataset, indices, task, device, batch_size, want, num_workers)
    order = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    part, _ = batch_shard(len(order), batch_size)
    local = predict(model, dataset, order[part], task, device, batch_size, want, num_workers)
    kinds = sorted(local)  # the same order on every rank: the gathers are collective
    gathered = distributed.gather_rows([local[k] for k in kinds])
    return None if gathered is None else dict(zip(kinds, gathered, strict=True))


@torch.no_grad()
def predict_mc(model: nn.Module, dataset: Dataset, indices: np.ndarray, task: str,
               device: torch.device, passes: int, batch_size: int = 512,
               num_workers: int = 0, seed: int = 0, first_batch: int = 0) -> np.ndarray:
    """(passes, n, C) probabilities with dropout sampling and batch-norm frozen.

    When dropout sits only before the head (as in every built-in backbone), the
    deterministic body runs once per batch and only the head is sampled ``passes`` times:
    the same distribution as full passes, at a fraction of the cost. Batch ``k`` (counted
    from ``first_batch``) draws its dropout masks from ``(seed, k)``, so the samples do not
    depend on how the batches are spread over processes.
    """
    if not getattr(model, "has_active_dropout", lambda: False)():
        raise SelectionError("MC dropout needs a backbone with dropout > 0; "
                             "set backbone.dropout=0.3 (or any p > 0)")
    body_has_dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.body.modules())
    out: list[np.ndarray] = []
    rng_devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    with mc_dropout(model.to(device)), torch.random.fork_rng(devices=rng_devices):
        for k, (x, _) in enumerate(loader(dataset, indices, batch_size, device, num_workers)):
            torch.manual_seed(derive_seed(seed, first_batch + k))
            x = x.to(device, non_blocking=True)
            if body_has_dropout:
                samples = [to_probs(model(x).float(), task) for _ in range(passes)]
            else:
                z = model.features(x)
                samples = [to_probs(model.head(z).float(), task) for _ in range(passes)]
            out.append(torch.stack(samples).cpu().numpy())
    return np.concatenate(out, axis=1) if out else np.empty((passes, 0, 0), np.float32)


def evaluate(model: nn.Module, dataset: Dataset, targets: np.ndarray, task: str,
             device: torch.device, batch_size: int = 512,
             num_workers: int = 0) -> dict[str, float]:
    """Test metrics (accuracy, or mAP and pooled AP for multi-label); every rank must call
    it (each predicts a shard, rank 0 scores, every rank gets the numbers)."""
    out = predict_sharded(model, dataset, None, task, device, batch_size, ("probs",), num_workers)
    result = None if out is None else _metrics_or_why_not(task, out["probs"], targets)
    result = distributed.broadcast_object(result)  # every rank raises alike
    if isinstance(result, str):
        raise TrainingError(result)
    return result


def _metrics_or_why_not(task: str, probs: np.ndarray, targets: np.ndarray) -> dict | str:
    """The test metrics, or why there are none: a NaN or infinite prediction would give a
    number that means nothing (every ranking ties), so it is an error, not a metric."""
    bad = int((~np.isfinite(probs)).any(axis=1).sum())
    if bad:
        return (f"the trained model predicts NaN or inf for {bad:,} of the {len(probs):,} test "
                "examples; training diverged or went numerically wrong (see train_loss; lower "
                "trainer.lr, or check the inputs)")
    return task_metrics(task, probs, targets)


class TorchPoolOutputs:
    """Lazy, cached pool outputs of one trained model for one cycle.

    Every computation is a *request* (a picklable tuple): rank 0 announces it to the other
    ranks, which answer with `serve` from `distributed.main_only`, and does its own share.
    ``seed`` seeds the MC-dropout masks.
    """

    def __init__(self, model: nn.Module, pool_eval: Dataset, task: str, device: torch.device,
                 needs: frozenset[str], batch_size: int = 512, num_workers: int = 0,
                 seed: int = 0) -> None:
        self._model, self._pool, self._task = model, pool_eval, task
        self._device, self._batch, self._workers = device, batch_size, num_workers
        self._seed = seed
        self._want = {k for k in ("probs", "embeddings") if k in needs}
        if "grad_embeddings" in needs:
            self._want |= {"probs", "embeddings"}
        self._cache: dict[str, np.ndarray] = {}

    def _full(self, kind: str) -> np.ndarray:
        if kind not in self._cache:
            self._cache.update(self._ask(("predict", sorted(self._want | {kind}))))
        return self._cache[kind]

    def probs(self, idx: np.ndarray) -> np.ndarray:
        return self._full("probs")[idx]

    def embeddings(self, idx: np.ndarray) -> np.ndarray:
        return self._full("embeddings")[idx]

    def mc_probs(self, idx: np.ndarray, passes: int) -> np.ndarray:
        return self._ask(("mc_probs", np.asarray(idx, dtype=np.int64), int(passes)))

    def map_inputs(self, fn: Callable[[nn.Module, torch.Tensor], Any], idx: np.ndarray,
                   batch_size: int | None = None) -> tuple[np.ndarray, ...]:
        """``fn(model, x)`` over the batches of ``idx``, per-row outputs concatenated."""
        return self._ask(("map", fn, np.asarray(idx, dtype=np.int64), batch_size or self._batch))

    def _ask(self, request: tuple) -> Any:
        distributed.ask_others(request)
        return self.serve(request)

    def serve(self, request: tuple) -> Any:
        """This rank's share of ``request``; the whole result on rank 0, None elsewhere."""
        kind, *args = request
        if kind == "predict":
            return predict_sharded(self._model, self._pool, None, self._task, self._device,
                                   self._batch, args[0], self._workers)
        if kind == "mc_probs":
            idx, passes = args
            part, first = batch_shard(len(idx), self._batch)
            local = predict_mc(self._model, self._pool, idx[part], self._task, self._device,
                               passes, self._batch, self._workers, self._seed, first)
            out = distributed.gather_rows([np.ascontiguousarray(local.transpose(1, 0, 2))])
            return None if out is None else np.ascontiguousarray(out[0].transpose(1, 0, 2))
        fn, idx, step = args  # "map"
        part, _ = batch_shard(len(idx), step)
        self._model.eval()
        local = stack_batch_outputs(fn(self._model, x) for _, x in self._input_batches(idx[part], step))
        out = distributed.gather_rows(local)
        return None if out is None else tuple(out)

    def inputs(self, idx: np.ndarray, batch_size: int | None = None
               ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """``(pool indices, x on the device)`` batches of ``pool_eval`` (test transforms)."""
        return self._input_batches(np.asarray(idx, dtype=np.int64), batch_size or self._batch)

    def _input_batches(self, idx: np.ndarray, step: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        start = 0
        for x, _ in loader(self._pool, idx, step, self._device, self._workers):
            yield idx[start:start + len(x)], x.to(self._device, non_blocking=True)
            start += len(x)

    @property
    def model(self) -> nn.Module:
        return self._model

    @property
    def device(self) -> torch.device:
        return self._device
