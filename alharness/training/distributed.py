"""One run over several processes: who this process is, and the collectives the run uses.

The process group is torch.distributed's (gloo on the CPU, NCCL on CUDA), set up from the
standard environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``: what
torchrun, torch's elastic launcher and submitit's ``TorchDistributedEnvironment`` export).
Every helper here is a no-op for a single process, so the trainer, inference and runner
call them unconditionally and a one-process run does exactly what it did before.

Rank 0 is the *main* process: it alone selects and writes results. `main_only` runs a
function there and hands its result (or its `HarnessError`) to every rank; while rank 0
works, the other ranks *serve* its requests (a shard of pool inference each), so
selection code on rank 0 can ask for sharded outputs without knowing about ranks.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from alharness.errors import HarnessError
from alharness.training.device import derive_seed

T = TypeVar("T")

#: Upper bound of one gather message per rank (rows are sent in blocks of this size, so
#: gathering a 10^7-row embedding matrix never needs a second copy of it on a GPU).
GATHER_BLOCK_BYTES = 64 * 2**20

_REQUEST, _DONE = "request", "done"


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join_process_group(device: torch.device) -> None:
    """Join the group described by the environment (once per process; later calls, e.g.
    the next job of a ``-m`` sweep run under torchrun, reuse it)."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return
    if device.type == "cuda":  # this process's GPU (one visible GPU per task under srun)
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(_leave_process_group)


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int) -> int:
    """The torch seed of this rank's random stream (dropout, augmentation) for a stream
    seeded ``seed``: rank 0 keeps ``seed``, so one process draws what it always drew."""
    return seed if rank() == 0 else derive_seed(seed, rank())


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_object(obj: Any = None) -> Any:
    """Rank 0's ``obj`` (any picklable object) on every rank."""
    if world_size() == 1:
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    return box[0]


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (float64), on every rank."""
    if world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(tensor)
    return tensor.tolist()


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of parameters that DDP does not manage (a training add-on's)."""
    world = world_size()
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def gather_rows(arrays: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """For each of ``arrays``: every rank's rows, concatenated in rank order, on rank 0
    (None on the others).

    Ranks may hold different numbers of rows; a rank with none may pass no arrays at all
    (the layout then comes from the others). Values travel as raw tensors, so the result
    is bit-identical to the rows.
    """
    if world_size() == 1:
        return list(arrays)
    metas: list[Any] = [None] * world_size()
    dist.all_gather_object(metas, [(len(a), a.shape[1:], a.dtype.str) for a in arrays])
    layout = max(metas, key=lambda m: (len(m), sum(n for n, _, _ in m)))
    gathered = []
    for i, (_, shape, dtype) in enumerate(layout):
        counts = [m[i][0] if i < len(m) else 0 for m in metas]
        mine = arrays[i] if i < len(arrays) else np.empty(0)
        gathered.append(_gather_array(mine, counts, tuple(shape), np.dtype(dtype)))
    return gathered if is_main() else None


def _gather_array(local: np.ndarray, counts: list[int], shape: tuple[int, ...],
                  dtype: np.dtype) -> np.ndarray | None:
    local = local.reshape(len(local), *shape).astype(dtype, copy=False)
    wire = np.dtype(np.uint8) if dtype == np.bool_ else dtype  # gloo/NCCL move no bools
    row_bytes = max(1, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    block = max(1, min(GATHER_BLOCK_BYTES // row_bytes, max(counts)))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = np.empty((offsets[-1], *shape), dtype) if is_main() else None
    device = _comm_device()
    for start in range(0, max(counts), block):
        mine = local[start:start + block]
        buffer = np.zeros((block, *shape), wire)
        buffer[:len(mine)] = mine.view(wire)
        piece = torch.from_numpy(buffer).to(device)
        parts = [torch.empty_like(piece) for _ in counts] if out is not None else None
        dist.gather(piece, parts, dst=0)
        if out is None:
            continue
        for r, part in enumerate(parts):
            n = int(np.clip(counts[r] - start, 0, block))
            out[offsets[r] + start:offsets[r] + start + n] = part[:n].cpu().numpy().view(dtype)
    return out


def main_only(work: Callable[[], T], serve: Callable[[Any], Any] | None = None) -> T:
    """``work()`` on rank 0; its result on every rank.

    Meanwhile the other ranks wait for rank 0's `ask_others` requests and answer each with
    ``serve(request)``. A `HarnessError` raised by ``work`` is raised on every rank (so
    all of them stop with the same one-line error); any other exception also stops the
    others, with a pointer to rank 0's traceback.
    """
    if world_size() == 1:
        return work()
    if is_main():
        try:
            outcome: tuple[bool, Any] = (True, work())
        except HarnessError as exc:
            outcome = (False, exc)
        except Exception:
            broadcast_object((_DONE, (False, RuntimeError("rank 0 failed; see its traceback"))))
            raise
        broadcast_object((_DONE, outcome))
    else:
        while True:
            kind, payload = broadcast_object()
            if kind == _DONE:
                outcome = payload
                break
            serve(payload)
    ok, value = outcome
    if not ok:
        raise value
    return value


def ask_others(request: Any) -> None:
    """From rank 0 inside `main_only`: make every other rank call ``serve(request)`` now
    (rank 0 then does its own share of the same work)."""
    if world_size() > 1:
        broadcast_object((_REQUEST, request))
