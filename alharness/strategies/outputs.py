"""`ArrayOutputs`: pool outputs held as precomputed arrays.

Used by tests and by ``scripts/bench_selection.py`` to run any strategy without training
a network; the runner uses `alharness.training.inference.TorchPoolOutputs` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from alharness.ops.batches import stack_batch_outputs


class ArrayOutputs:
    """Serve ``probs``/``embeddings``/``mc_probs`` from arrays indexed by pool position.

    ``model`` may be any object with a ``head(z)`` (e.g. a ``torch.nn.Linear`` wrapped by
    `alharness.models.linear_head.LinearHead`) for strategies that need the classifier head.
    ``inputs`` (optional) are the model's inputs per pool position, served as float32 torch
    batches on ``device`` (for the synthetic pools of tests and benchmarks, the vectors
    themselves, with `LinearHead` as the model).
    """

    def __init__(
        self,
        probs: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
        mc_probs: np.ndarray | None = None,
        model: Any = None,
        device: Any = "cpu",
        inputs: np.ndarray | None = None,
    ) -> None:
        self._probs = probs
        self._embeddings = embeddings
        self._mc_probs = mc_probs
        self._model = model
        self._device = device
        self._inputs = inputs

    @staticmethod
    def _take(array: np.ndarray | None, idx: np.ndarray, what: str, axis: int = 0) -> np.ndarray:
        if array is None:
            raise ValueError(f"ArrayOutputs was built without {what}")
        return np.take(array, idx, axis=axis)

    def probs(self, idx: np.ndarray) -> np.ndarray:
        return self._take(self._probs, idx, "probs")

    def embeddings(self, idx: np.ndarray) -> np.ndarray:
        return self._take(self._embeddings, idx, "embeddings")

    def mc_probs(self, idx: np.ndarray, passes: int) -> np.ndarray:
        samples = self._take(self._mc_probs, idx, "mc_probs", axis=1)
        if samples.shape[0] < passes:
            raise ValueError(f"ArrayOutputs holds {samples.shape[0]} MC passes, {passes} asked")
        return samples[:passes]

    def inputs(self, idx: np.ndarray, batch_size: int | None = None) -> Iterator[tuple[np.ndarray, Any]]:
        if self._inputs is None:
            raise ValueError("ArrayOutputs was built without inputs; pass inputs= to run "
                             "strategies that need 'inputs'")
        return self._batches(self._inputs, idx, batch_size or 1024)

    def map_inputs(self, fn: Any, idx: np.ndarray,
                   batch_size: int | None = None) -> tuple[np.ndarray, ...]:
        return stack_batch_outputs(fn(self.model, x) for _, x in self.inputs(idx, batch_size))

    def _batches(self, inputs: np.ndarray, idx: np.ndarray,
                 step: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        for start in range(0, len(idx), step):
            chunk = idx[start:start + step]
            x = np.ascontiguousarray(np.take(inputs, chunk, axis=0), dtype=np.float32)
            yield chunk, torch.from_numpy(x).to(self._device)

    @property
    def model(self) -> Any:
        if self._model is None:
            raise ValueError("ArrayOutputs was built without a model")
        return self._model

    @property
    def device(self) -> Any:
        return self._device
