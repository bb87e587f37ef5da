"""When the launcher may fork a run's processes (`alharness.loop.launch`)."""

from __future__ import annotations

import numpy as np


def test_processes_are_spawned_once_numbas_thread_pool_runs_here():
    """A forked child hangs in an OpenMP pool its parent started (numba's, after a
    Cluster-Margin selection in this process): then, and with threads or CUDA, spawn."""
    from alharness.loop.launch import _fork_safe
    from alharness.ops.hac_exact import exact_average_linkage

    assert not _fork_safe(2, cuda=False) and not _fork_safe(1, cuda=True)
    x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    exact_average_linkage(x, target_cluster_size=5)  # large enough for the parallel kernels
    assert not _fork_safe(1, cuda=False)
