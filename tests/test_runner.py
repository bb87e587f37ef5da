"""The AL loop end to end: rows, resume after a kill, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from alharness.errors import CheckpointError, ConfigError
from alharness.loop import runner as runner_module
from alharness.loop.identity import run_id
from alharness.loop.runner import run_experiment
from tests.conftest import run_cli, run_until_killed

VOLATILE = ["train_seconds", "select_seconds", "prepare_seconds", "wall_seconds", "code_version"]


def run_folders(results: Path) -> list[Path]:
    return sorted(p.parent for p in results.rglob("rows.csv"))


def stable_rows(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "rows.csv").drop(columns=VOLATILE, errors="ignore")


def picks(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "picks.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.slow
def test_cli_writes_one_row_per_cycle_and_a_summary(tmp_path):
    """The issue's check: strategy=entropy seeds=[0] budget.cycles=2 → cycles 0..2."""
    proc = run_cli(["strategy=entropy", "seeds=[0]", "budget.cycles=2", "trainer.epochs=3",
                    "progress=false", f"results_dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    assert "mean ± std over seeds" in proc.stdout
    (folder,) = run_folders(tmp_path)
    assert folder.parent.name == "digits-small_cnn"
    rows = pd.read_csv(folder / "rows.csv")
    assert rows["cycle"].tolist() == [0, 1, 2]
    assert rows["n_labelled"].tolist() == [20, 40, 60]
    assert (rows["strategy"] == "entropy").all() and (rows["metric_name"] == "accuracy").all()
    assert rows["metric"].between(0, 1).all()
    assert np.isnan(rows["select_seconds"].iloc[-1]) and rows["n_selected"].tolist() == [20, 20, 0]
    assert {"config.yaml", "picks.npz", "state.pt", "status.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    chosen = picks(folder)
    labelled = np.concatenate([chosen["initial"], chosen["cycle_0"], chosen["cycle_1"]])
    assert len(np.unique(labelled)) == 60


def test_same_config_and_seed_give_identical_picks(make_config, tmp_path):
    first = make_config(["strategy=margin"])
    second = {**first, "results_dir": str(tmp_path / "again")}
    run_experiment(first)
    run_experiment(second)
    (a,) = run_folders(Path(first["results_dir"]))
    (b,) = run_folders(Path(second["results_dir"]))
    assert a.name == b.name  # the run id is the config's, not the time's
    for key, value in picks(a).items():
        np.testing.assert_array_equal(value, picks(b)[key])
    pd.testing.assert_frame_equal(stable_rows(a), stable_rows(b))


def test_initial_set_is_shared_across_strategies_and_differs_across_seeds(make_config):
    run_experiment(make_config(["strategy=random", "seeds=[0,1]", "budget.cycles=0"]))
    cfg = make_config(["strategy=entropy", "seeds=[0]", "budget.cycles=0"])
    run_experiment(cfg)
    by_run = {f.name: picks(f)["initial"] for f in run_folders(Path(cfg["results_dir"]))}
    random0 = next(v for k, v in by_run.items() if k.startswith("random-s0"))
    random1 = next(v for k, v in by_run.items() if k.startswith("random-s1"))
    entropy0 = next(v for k, v in by_run.items() if k.startswith("entropy-s0"))
    np.testing.assert_array_equal(random0, entropy0)
    assert not np.array_equal(random0, random1)


def test_killed_run_resumes_at_last_finished_cycle_with_identical_results(make_config, tmp_path,
                                                                           monkeypatch, capsys):
    cfg = make_config(["strategy=margin", "budget.cycles=3"])
    clean = {**cfg, "results_dir": str(tmp_path / "clean")}
    run_experiment(clean)

    run_until_killed(cfg, monkeypatch, training_call=3)  # during cycle 2's training
    (folder,) = run_folders(Path(cfg["results_dir"]))
    assert json.loads((folder / "status.json").read_text()) ["cycles_done"] == 2
    assert len(pd.read_csv(folder / "rows.csv")) == 2

    resumed_cycles, real_train = [], runner_module.train
    monkeypatch.setattr(runner_module, "train",
                        lambda *a, **k: resumed_cycles.append(1) or real_train(*a, **k))
    capsys.readouterr()
    run_experiment(cfg)
    assert f"resuming {folder.name} at cycle 2\n" in capsys.readouterr().out
    assert len(resumed_cycles) == 2  # cycles 2 and 3 only
    (reference,) = run_folders(Path(clean["results_dir"]))
    pd.testing.assert_frame_equal(stable_rows(folder), stable_rows(reference))
    for key, value in picks(reference).items():
        np.testing.assert_array_equal(picks(folder)[key], value)


def test_finished_run_is_skipped_not_retrained(make_config, monkeypatch):
    cfg = make_config(["strategy=least_confidence"])
    run_experiment(cfg)
    monkeypatch.setattr(runner_module, "train", lambda *a, **k: pytest.fail("retrained"))
    rows = run_experiment(cfg)
    assert rows["cycle"].tolist() == [0, 1, 2]


def test_continue_training_mode_checkpoints_weights(make_config, monkeypatch):
    """trainer.reinit=false keeps training the same model, so a resume needs its weights."""
    cfg = make_config(["trainer.reinit=false", "budget.cycles=1"])
    run_experiment(cfg)
    (folder,) = run_folders(Path(cfg["results_dir"]))
    import torch

    state = torch.load(folder / "state.pt", weights_only=False)
    assert state["model_state"] is not None


def test_corrupt_checkpoint_is_one_line_error_and_keeps_results(make_config, tmp_path):
    cfg = make_config(["budget.cycles=2"])
    run_experiment(cfg)
    (folder,) = run_folders(Path(cfg["results_dir"]))
    (folder / "status.json").write_text(json.dumps({"status": "running", "cycles_done": 2}))
    (folder / "state.pt").write_bytes(b"not a checkpoint")
    before = (folder / "rows.csv").read_bytes()
    with pytest.raises(CheckpointError, match="corrupt.*delete"):
        run_experiment(cfg)
    assert (folder / "rows.csv").read_bytes() == before


def test_resume_refuses_a_folder_written_by_another_config(make_config):
    cfg = make_config([])
    run_experiment(cfg)
    (folder,) = run_folders(Path(cfg["results_dir"]))
    identity = json.loads((folder / "identity.json").read_text())
    identity["trainer"]["lr"] = 123.0
    (folder / "identity.json").write_text(json.dumps(identity))
    with pytest.raises(CheckpointError, match="different config"):
        run_experiment(cfg)


def test_run_id_ignores_output_location_and_logging(make_config, tmp_path):
    cfg = make_config([])
    moved = {**cfg, "results_dir": str(tmp_path / "elsewhere"), "progress": True,
             "logger": {"name": "wandb"}}
    assert run_id(cfg, 0) == run_id(moved, 0)
    assert run_id(cfg, 0) != run_id(cfg, 1)
    assert run_id(cfg, 0) != run_id({**cfg, "trainer": {**cfg["trainer"], "lr": 0.5}}, 0)


def test_features_dataset_trains_a_linear_head(make_config, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "emb.npz", X=x, y=y)
    cfg = make_config(["dataset=features", f"dataset.path={tmp_path / 'emb.npz'}",
                       "backbone=linear", "trainer.epochs=30", "trainer.lr=0.05"])
    rows = run_experiment(cfg)
    assert rows["n_pool"].iloc[0] == 240
    assert set(rows["backbone"]) == {"linear"}  # the backbone that ran, not the MLP it is built as
    assert set(rows["experiment"]) == {"features-linear"}
    assert rows["metric"].iloc[-1] > 0.8  # one informative coordinate: easy


def test_torch_threads_is_applied_and_checked(make_config):
    from alharness.loop.runner import Experiment

    before = torch.get_num_threads()
    wanted = before + 1  # differs from the suite's setting, so only the option can set it
    try:
        Experiment.from_config(make_config([f"torch_threads={wanted}"]))
        assert torch.get_num_threads() == wanted
        with pytest.raises(ConfigError, match="torch_threads: out of range"):
            Experiment.from_config(make_config(["torch_threads=0"]))
    finally:
        torch.set_num_threads(before)


def test_thread_count_is_part_of_the_run_identity(make_config):
    """On the CPU, torch's thread count changes the floats (reductions are split across
    threads), so one config run with 1 and with 2 threads is two runs, two settings, never
    one skipped as the other's duplicate, and the report names them apart."""
    from alharness.report import load_results

    try:
        one = run_experiment(make_config(["torch_threads=1", "budget.cycles=0"]))
        two = run_experiment(make_config(["torch_threads=2", "budget.cycles=0"]))
    finally:
        torch.set_num_threads(1)  # the suite's setting (conftest)
    assert one["run_id"][0] != two["run_id"][0] and one["setting"][0] != two["setting"][0]
    folders = run_folders(Path(make_config([])["results_dir"]))
    threads = sorted(json.loads((f / "identity.json").read_text())["numerics"]["torch_threads"]
                     for f in folders)
    assert threads == [1, 2]
    labels = set(load_results([folders[0].parent])["setting_label"])
    assert {label.rsplit("[", 1)[-1] for label in labels} == {"numerics.torch_threads=1]",
                                                              "numerics.torch_threads=2]"}


def test_a_model_predicting_nan_is_an_error_not_a_metric(make_config, monkeypatch, tmp_path):
    """NaN predictions tie every ranking, so a metric (and a selection) from them would be a
    silently meaningless number: the run stops at the evaluation with one line."""
    from alharness.training.trainer import TrainingError

    real_train = runner_module.train

    def train_then_break(model, *args, **kwargs):
        result = real_train(model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(runner_module, "train", train_then_break)
    with pytest.raises(TrainingError, match="predicts NaN or inf for 359 of the 359 test") as err:
        run_experiment(make_config(["budget.cycles=1"]))
    assert "\n" not in str(err.value)
