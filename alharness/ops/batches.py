"""Per-batch model outputs, concatenated."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def stack_batch_outputs(results: Iterable[torch.Tensor | tuple[torch.Tensor, ...]]
                        ) -> tuple[np.ndarray, ...]:
    """Concatenate per-batch outputs (a tensor, or a tuple of tensors, with one row per
    input) into one numpy array per output; ``()`` when there was no batch."""
    columns: list[list[np.ndarray]] = []
    for out in results:
        out = out if isinstance(out, tuple) else (out,)
        columns = columns or [[] for _ in out]
        for column, tensor in zip(columns, out, strict=True):
            column.append(tensor.detach().cpu().numpy())
    return tuple(np.concatenate(column) for column in columns)
