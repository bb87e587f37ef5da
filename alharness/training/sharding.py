"""Which rows each rank works on, chosen so that any number of ranks computes what one
process computes.

Training (`GlobalBatchSampler`): every rank draws the *same* order of the labelled set
(one shared generator, consumed exactly as ``DataLoader(shuffle=True)`` consumes it), cuts
it into global batches of ``trainer.batch_size`` and takes every ``world``-th row of each.
DDP averages the ranks' gradients, so a rank's loss is the *sum* of its per-example
losses divided by ``rows / world`` (`GlobalBatchSampler.share`): the average is then the
gradient of the global batch's mean loss, the step one process takes on the same batch,
up to the order of float additions. A rank whose share of a short last batch is empty
trains on a stand-in row with weight 0, since DDP needs every rank in every step.

Inference (`batch_shard`): each rank takes a contiguous run of whole evaluation batches,
so every batch is the one a single process would form (bit-identical outputs), and
concatenating the ranks' rows in rank order restores pool order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import RandomSampler, Sampler

from alharness.training import distributed


class GlobalBatchSampler(Sampler[list[int]]):
    """This rank's part of each global batch of a shuffled ``range(n)``, every epoch."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size = n, batch_size
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self._order = RandomSampler(range(n), generator=generator)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self._order)
        for start in range(0, self.n, self.batch_size):
            batch = order[start:start + self.batch_size]
            yield batch[self.rank::self.world] or batch[:1]

    def share(self, step: int) -> tuple[int, float]:
        """(rows of this rank's batch ``step`` that count — 0 for a stand-in —, the divisor
        of its summed loss)."""
        rows = min(self.batch_size, self.n - step * self.batch_size)
        return len(range(self.rank, rows, self.world)), rows / self.world


def batch_shard(n: int, batch_size: int) -> tuple[slice, int]:
    """This rank's contiguous rows of ``n`` (whole batches of ``batch_size``) and the
    global index of its first batch."""
    batches = math.ceil(n / batch_size)
    rank, world = distributed.rank(), distributed.world_size()
    first, last = batches * rank // world, batches * (rank + 1) // world
    return slice(min(first * batch_size, n), min(last * batch_size, n)), first
