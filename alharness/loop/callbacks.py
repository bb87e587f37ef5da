"""Hydra callback: after a multirun, one summary table over the experiment's runs.

Each sweep job prints its own summary; this prints them side by side once the sweep ends
(with the basic and joblib launchers; cluster launchers return before jobs finish).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from alharness.loop.summary import summary_table


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.results_dir)) / str(config.experiment_name)
        files = sorted(folder.glob("*/rows.csv"))
        if not files:
            return
        rows = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        print(f"\nsweep summary: {len(files)} runs in {folder}/\n{summary_table(rows)}", flush=True)
