"""Backbone contract: features/head split, dropout before the head, MC dropout, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alharness.errors import ConfigError
from alharness.info import DatasetInfo
from alharness.models import BACKBONES, build_backbone, mc_dropout
from alharness.training.inference import predict, predict_mc

CIFAR = DatasetInfo("cifar-like", "multiclass", 10, (3, 32, 32))
VECTORS = DatasetInfo("vectors", "multiclass", 4, (12,))


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "vgg16", "resnet18", "resnet101", "vit"])
def test_every_backbone_splits_into_features_and_head(name):
    info = VECTORS if name == "mlp" else CIFAR
    torch.manual_seed(0)
    model = build_backbone({"name": name, "dropout": 0.5}, info).eval()
    x = torch.randn(3, *info.input_shape)
    with torch.no_grad():
        z = model.features(x)
        assert z.shape == (3, model.embed_dim)
        torch.testing.assert_close(model.head(z), model(x))
    assert model(x).shape == (3, info.num_classes)
    assert model.has_active_dropout()


def test_mc_dropout_samples_the_head_and_freezes_batch_norm():
    torch.manual_seed(0)
    model = build_backbone({"name": "small_cnn", "dropout": 0.5}, CIFAR).eval()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), mc_dropout(model):
        assert not bn.training and model.dropout.training
        a, b = model(x), model(x)
    assert not torch.allclose(a, b)  # dropout is sampling
    torch.testing.assert_close(bn.running_mean, before)  # BN statistics untouched
    assert not model.training and not model.dropout.training  # eval mode restored


def test_predict_mc_gives_distinct_passes_and_refuses_models_without_dropout():
    data = torch.utils.data.TensorDataset(torch.randn(6, 12), torch.zeros(6, dtype=torch.long))
    model = build_backbone({"name": "mlp", "dropout": 0.5}, VECTORS)
    samples = predict_mc(model, data, np.arange(6), "multiclass", torch.device("cpu"), passes=5)
    assert samples.shape == (5, 6, 4)
    np.testing.assert_allclose(samples.sum(axis=2), 1.0, rtol=1e-5)
    assert samples.std(axis=0).max() > 1e-3
    mean_prob = predict(model, data, None, "multiclass", torch.device("cpu"))["probs"]
    assert np.abs(samples.mean(axis=0) - mean_prob).max() < 0.5
    no_dropout = build_backbone({"name": "mlp", "dropout": 0.0}, VECTORS)
    with pytest.raises(Exception, match="dropout > 0"):
        predict_mc(no_dropout, data, np.arange(6), "multiclass", torch.device("cpu"), passes=2)


@pytest.mark.parametrize(("name", "info", "message"), [
    ("vgg16", DatasetInfo("digits", "multiclass", 10, (1, 8, 8)), "at least 32×32"),
    ("small_cnn", VECTORS, "needs image inputs"),
    ("vit", DatasetInfo("odd", "multiclass", 10, (3, 30, 30)), "divisible"),
])
def test_backbone_input_mismatch_is_a_clear_config_error(name, info, message):
    with pytest.raises(ConfigError, match=message):
        build_backbone({"name": name}, info)


def test_local_weights_load_and_missing_weights_are_an_error(tmp_path):
    torch.manual_seed(1)
    source = build_backbone({"name": "mlp"}, VECTORS)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(2)
    loaded = build_backbone({"name": "mlp", "weights": str(tmp_path / "w.pt")}, VECTORS)
    for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match="does not exist"):
        build_backbone({"name": "mlp", "weights": str(tmp_path / "none.pt")}, VECTORS)


def test_registry_lists_the_design_card_backbones():
    assert {"mlp", "small_cnn", "vgg16", "resnet18", "resnet101", "vit"} <= set(BACKBONES.names())
