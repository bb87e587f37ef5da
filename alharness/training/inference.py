"""Model outputs over the pool, computed once per cycle and only when a strategy needs them.

`TorchPoolOutputs` is the runner's implementation of the strategies' `PoolOutputs`: the
model in eval mode, the pool with *test* transforms, probabilities and embeddings from one
pass, MC-dropout samples and input batches (for strategies that run the model) on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from alharness.errors import SelectionError
from alharness.metrics import task_metrics
from alharness.models.base import mc_dropout
from alharness.training.trainer import loader


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


@torch.no_grad()
def predict_mc(model: nn.Module, dataset: Dataset, indices: np.ndarray, task: str,
               device: torch.device, passes: int, batch_size: int = 512,
               num_workers: int = 0) -> np.ndarray:
    """(passes, n, C) probabilities with dropout sampling and batch-norm frozen.

    When dropout sits only before the head (as in every built-in backbone), the
    deterministic body runs once per batch and only the head is sampled ``passes`` times:
    the same distribution as full passes, at a fraction of the cost.
    """
    if not getattr(model, "has_active_dropout", lambda: False)():
        raise SelectionError("MC dropout needs a backbone with dropout > 0; "
                             "set backbone.dropout=0.3 (or any p > 0)")
    body_has_dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.body.modules())
    out: list[np.ndarray] = []
    with mc_dropout(model.to(device)):
        for x, _ in loader(dataset, indices, batch_size, device, num_workers):
            x = x.to(device, non_blocking=True)
            if body_has_dropout:
                samples = [to_probs(model(x).float(), task) for _ in range(passes)]
            else:
                z = model.features(x)
                samples = [to_probs(model.head(z).float(), task) for _ in range(passes)]
            out.append(torch.stack(samples).cpu().numpy())
    return np.concatenate(out, axis=1)


def evaluate(model: nn.Module, dataset: Dataset, targets: np.ndarray, task: str,
             device: torch.device, batch_size: int = 512,
             num_workers: int = 0) -> dict[str, float]:
    """Test metrics (accuracy, or mAP and pooled AP for multi-label)."""
    probs = predict(model, dataset, None, task, device, batch_size, ("probs",), num_workers)["probs"]
    return task_metrics(task, probs, targets)


class TorchPoolOutputs:
    """Lazy, cached pool outputs of one trained model for one cycle."""

    def __init__(self, model: nn.Module, pool_eval: Dataset, task: str, device: torch.device,
                 needs: frozenset[str], batch_size: int = 512, num_workers: int = 0) -> None:
        self._model, self._pool, self._task = model, pool_eval, task
        self._device, self._batch, self._workers = device, batch_size, num_workers
        self._want = {k for k in ("probs", "embeddings") if k in needs}
        if "grad_embeddings" in needs:
            self._want |= {"probs", "embeddings"}
        self._cache: dict[str, np.ndarray] = {}

    def _full(self, kind: str) -> np.ndarray:
        if kind not in self._cache:
            self._cache.update(predict(self._model, self._pool, None, self._task, self._device,
                                       self._batch, self._want | {kind}, self._workers))
        return self._cache[kind]

    def probs(self, idx: np.ndarray) -> np.ndarray:
        return self._full("probs")[idx]

    def embeddings(self, idx: np.ndarray) -> np.ndarray:
        return self._full("embeddings")[idx]

    def mc_probs(self, idx: np.ndarray, passes: int) -> np.ndarray:
        return predict_mc(self._model, self._pool, idx, self._task, self._device, passes,
                          self._batch, self._workers)

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
