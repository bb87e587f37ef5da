"""The trainer applies what its config says: optimiser, weight decay, early stop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alharness.data.base import TensorPool
from alharness.info import DatasetInfo
from alharness.models import build_backbone
from alharness.training.trainer import TrainerConfig, train

INFO = DatasetInfo("toy", "multiclass", 3, (8,))


def fit(**options) -> tuple[torch.nn.Module, object]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=generator)
    pool = TensorPool(x, x[:, :3].argmax(1))
    torch.manual_seed(0)
    model = build_backbone({"name": "mlp", "hidden": [32]}, INFO)
    cfg = TrainerConfig.from_mapping({"epochs": 20, "batch_size": 32, "amp": False, **options})
    result = train(model, pool, np.arange(96), "multiclass", cfg, seed=0, device=torch.device("cpu"))
    return model, result


def weight_norm(model: torch.nn.Module) -> float:
    return float(sum(p.detach().pow(2).sum() for n, p in model.named_parameters() if "weight" in n))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_is_applied(optimizer):
    plain, _ = fit(optimizer=optimizer, lr=0.05, weight_decay=0.0)
    decayed, _ = fit(optimizer=optimizer, lr=0.05, weight_decay=0.05)
    assert weight_norm(decayed) < 0.8 * weight_norm(plain)


def test_stop_at_train_accuracy_ends_training_early():
    _, full = fit(lr=0.01)
    _, early = fit(lr=0.01, stop_at_train_acc=0.5)
    assert full.epochs == 20 and early.epochs < 20 and early.train_accuracy >= 0.5
