"""scripts/estimate_compute.py: the schedule arithmetic on top of measured step times."""

from __future__ import annotations

import pytest

from tests.conftest import load_script


@pytest.fixture()
def script(monkeypatch):
    module = load_script("estimate_compute")
    # One training step = 10 ms, one inference batch = 256 ms (1 ms per image at 256).
    monkeypatch.setattr(module, "time_steps",
                        lambda step, count, sync: 0.01 if step.__name__ == "train_step" else 0.256)
    return module


def test_estimate_follows_the_schedule(script, capsys):
    # digits: pool 1,438, test 359; 20 + 20 × 8, 30 epochs, batch 64.
    assert script.main(["--steps", "1", "--device", "cpu", "--strategies", "2"]) == 0
    out = capsys.readouterr().out
    steps = 30 * sum(-(-n // 64) for n in range(20, 181, 20))   # 30 × 15 steps
    labelled = list(range(20, 181, 20))
    images = 9 * 359 + sum(1438 - n for n in labelled[:-1])
    hours = (steps * 0.01 + images * 0.001) / 3600
    assert f"one run         {hours:.2f} h" in out
    assert f"all runs        {hours * 3 * 2:.1f} h = 3 seeds × 2 strategies" in out
    assert "first epoch 0.01 s, last 0.03 s" in out   # 1 and 3 steps of 10 ms


def test_unknown_dataset_size_is_a_one_line_error(script, capsys):
    assert script.main(["dataset=openimages", "backbone=small_cnn", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the size of dataset 'openimages'") and err.count("\n") == 1
    assert script.main(["dataset=openimages", "dataset.max_pool=5000", "dataset.max_test=500",
                        "backbone=small_cnn", "--device", "cpu"]) == 0
    assert "pool 5,000, test 500" in capsys.readouterr().out


def test_devices_share_each_batch_and_the_inference(script, capsys):
    assert script.main(["--steps", "1", "--device", "cpu", "--devices", "2"]) == 0
    out = capsys.readouterr().out
    steps = 30 * sum(-(-n // 64) for n in range(20, 181, 20))   # global batches: as one device
    labelled = list(range(20, 181, 20))
    images = 9 * 359 + sum(1438 - n for n in labelled[:-1])
    hours = (steps * 0.01 + images * 0.001 / 2) / 3600
    assert "devices         2 (data-parallel: each trains on 32 of every batch of 64" in out
    assert "ms at batch 32;" in out   # the step is timed at one device's share
    assert f"one run         {hours:.2f} h" in out and f"= {hours * 2:.2f} device-hours" in out
