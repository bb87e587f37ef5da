"""logger=wandb logs the config, the same rows and the final figures offline, into the
run's folder, with no network."""

from __future__ import annotations

from pathlib import Path

from alharness.loop.runner import run_experiment


def test_wandb_offline_run_is_written_next_to_the_results(make_config, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_config(["logger=wandb", "budget.cycles=1"])
    rows = run_experiment(cfg)
    (folder,) = {p.parent for p in Path(cfg["results_dir"]).rglob("rows.csv")}
    offline = list((folder / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list(folder.rglob("*"))
    # where the offline run is and how to upload it; and, re-run, that nothing was logged
    assert (f"wandb: offline run saved in {offline[0]}; upload it with: wandb sync {offline[0]}"
            in capsys.readouterr().out)
    run_experiment(cfg)
    assert (f"wandb: {folder.name} was already finished, so nothing was logged this time; "
            f"its earlier offline run: wandb sync {offline[0]}") in capsys.readouterr().out
    history = offline[0] / f"run-{rows['run_id'].iloc[0]}.wandb"
    assert history.is_file() and history.stat().st_size > 0
    record = history.read_bytes()  # wandb's protobuf log: config, group and rows are in it
    assert cfg["experiment_name"].encode() in record  # the group
    assert b"select_seconds" in record and b"margin" in record
    figures = folder / "figures"
    assert (figures / "index.html").is_file()
    curves = list((figures / "curves").glob("*.png"))
    assert curves, list(figures.rglob("*"))
    logged = list(offline[0].rglob("media/images/figures/curves/*.png"))
    assert len(logged) == len(curves), list(offline[0].rglob("*.png"))
