"""Device choice and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from alharness.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA if present, else CPU; ``cpu`` forces the CPU; ``cuda[:i]`` demands a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible; use device=cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device={name!r} is not a torch device: {exc}") from exc


def set_cpu_threads(threads: int | None) -> None:
    """``torch_threads``: CPU threads for torch's intra-op work (null = torch's default).

    Small models gain little from threads, and several jobs on one machine (a joblib
    sweep) each running one thread per core oversubscribe it: OpenMP threads then wait on
    each other and a training step can get tens of times slower.
    """
    if threads is None:
        return
    if int(threads) < 1:
        raise ConfigError(f"torch_threads={threads}; use a positive count or null")
    torch.set_num_threads(int(threads))


def set_deterministic(device: torch.device, on: bool = True) -> None:
    """``deterministic``: on CUDA, cuDNN's deterministic kernels without autotuning and
    torch's deterministic algorithms where they exist (a warning names an op that has
    none), so that a config and seed give the same numbers on the same GPU. Costs some
    speed; ``deterministic=false`` gives it back. The CPU needs nothing (its kernels are
    deterministic for a fixed thread count)."""
    if device.type != "cuda":
        return
    if on:  # cuBLAS needs a fixed workspace before its first call to be reproducible
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on
    torch.use_deterministic_algorithms(on, warn_only=True)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for one deterministic block of work."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from a tuple (run seed, cycle, purpose), stable across runs and resumes."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint32).view(np.uint64)[0]
               >> np.uint64(1))
