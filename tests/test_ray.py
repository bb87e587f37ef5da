"""A sweep through Hydra's Ray launcher on a local Ray instance, read by the report.

The Ray launcher is an optional extra (``pip install -e ".[ray]"``); without it this test is
skipped and says why. ``ray.init`` with no address starts a single-node Ray on this
machine, which is the same launcher code path as an existing cluster (``address=auto`` or
``ray://host:10001``), minus the network.
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.test_presets import check_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                       reason='hydra-ray-launcher is not installed: pip install -e ".[ray]"'),
]

STRATEGIES = ["random", "margin", "entropy", "least_confidence"]


def test_four_point_sweep_on_local_ray_then_the_report(tmp_path):
    results = tmp_path / "results"
    proc = run_cli(["-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                    "+hydra.launcher.ray.init.include_dashboard=false",
                    f"strategy={','.join(STRATEGIES)}", "seeds=[0]", "budget.cycles=1",
                    "budget.batch=10", "trainer.epochs=2", "progress=false", "torch_threads=1",
                    f"results_dir={results}"], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Started a local Ray instance" in proc.stderr
    assert "schema_matching" not in proc.stderr
    assert "sweep summary: 4 of 4 points ran" in proc.stdout
    rows = pd.concat([pd.read_csv(f) for f in results.rglob("rows.csv")], ignore_index=True)
    assert sorted(rows["strategy"].unique()) == sorted(STRATEGIES)
    assert rows.groupby("strategy")["cycle"].apply(list).map(sorted).tolist() == [[0, 1]] * 4
    html = check_report(results, tmp_path / "report")
    assert all(name in html for name in STRATEGIES)
