"""Every paper preset composes, in its full and its smoke variant, into a config the schemas
accept, with the dataset, backbone and strategy its name promises. In-process (no run), so
it covers every preset in the fast tier; `tests/test_presets.py` runs a representative
subset of them end to end through the launchers."""

from __future__ import annotations

import pytest

from alharness.config.schema import validate_config
from tests.conftest import CONFIGS, compose_config

PRESETS = sorted(str(p.relative_to(CONFIGS / "experiment").with_suffix(""))
                 for p in (CONFIGS / "experiment").rglob("*.yaml"))
DATASET_OF = {"cifar10": "cifar10", "cifar100": "cifar100", "cifar100_vit": "cifar100",
              "svhn": "svhn", "mnist": "mnist", "openimages": "openimages_features",
              "openimages_full": "openimages"}


def test_the_presets_are_the_papers_settings():
    assert PRESETS == ["alfa_mix/cifar10", "alfa_mix/cifar100", "alfa_mix/cifar100_vit",
                       "alfa_mix/mnist", "alfa_mix/svhn", "cluster_margin/cifar10",
                       "cluster_margin/cifar100", "cluster_margin/openimages",
                       "cluster_margin/openimages_full", "cluster_margin/svhn"]


@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_composes_into_a_valid_config(preset, smoke, tmp_path):
    overrides = [f"+experiment={preset}", *(["+debug=smoke"] if smoke else [])]
    cfg = compose_config(overrides, tmp_path)
    validate_config(cfg)
    paper, setting = preset.split("/")
    assert cfg["strategy"]["name"] == paper
    assert cfg["dataset"]["name"] == DATASET_OF[setting]
    assert cfg["experiment_name"] == f"{paper}-{setting}" + ("-smoke" if smoke else "")
    assert (cfg["seeds"] == [0, 1]) == smoke and (cfg["trainer"]["epochs"] == 1) == smoke
