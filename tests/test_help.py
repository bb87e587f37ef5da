"""``python run.py --help``: the project's page (configs/hydra/help/alharness.yaml)."""

from __future__ import annotations

from tests.conftest import run_cli


def test_help_describes_the_tool_its_groups_presets_and_examples():
    proc = run_cli(["--help"])
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    assert "benchmark harness for deep batch active learning" in page
    assert "strategy: alfa_mix, badge," in page and "dataset: cifar10," in page  # $APP_CONFIG_GROUPS
    assert "experiment/cluster_margin: cifar10, cifar100, openimages, openimages_full, svhn" in page
    assert "+debug=smoke" in page and "--cfg job --resolve" in page
    assert "hydra/launcher=joblib" in page
    assert "powered by Hydra" not in page  # not Hydra's generic page
