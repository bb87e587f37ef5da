"""The backbone contract: ``features(x) -> z``, ``head(z) -> logits``, dropout before the head.

Splitting the network this way is what embedding-based strategies (CoreSet, BADGE,
ALFA-Mix, Cluster-Margin) need, and the dropout before the head makes MC dropout (BALD)
available on every backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alharness.errors import CheckpointError, ConfigError
from alharness.info import DatasetInfo
from alharness.plugins import BACKBONES_GROUP
from alharness.registry import Registry


class Backbone(nn.Module):
    """Subclasses build ``self.body`` (x -> z of width ``embed_dim``) and call
    ``super().__init__(embed_dim, num_classes, dropout)`` first."""

    def __init__(self, embed_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = int(embed_dim)
        self.num_classes = int(num_classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.embed_dim, self.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding z, shape (batch, embed_dim)."""
        return torch.flatten(self.body(x), 1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from embeddings; dropout first so MC dropout perturbs every backbone."""
        return self.classifier(self.dropout(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def has_active_dropout(self) -> bool:
        return any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.modules())


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (batch-norm statistics frozen) with only the dropout layers sampling."""
    was_training = model.training
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for m in dropouts:
        m.train()
    try:
        yield model
    finally:
        model.train(was_training)


def require_image_input(name: str, info: DatasetInfo, min_size: int = 1) -> tuple[int, int, int]:
    """(channels, height, width), or a clear error if the dataset does not fit the backbone."""
    if not info.is_image:
        raise ConfigError(f"backbone {name!r} needs image inputs (C, H, W) but dataset "
                          f"{info.name!r} gives vectors {info.input_shape}; use backbone=mlp")
    c, h, w = info.input_shape
    if min(h, w) < min_size:
        raise ConfigError(f"backbone {name!r} needs images of at least {min_size}×{min_size}, "
                          f"dataset {info.name!r} has {h}×{w}; resize them with "
                          f"dataset.image_size={min_size} (image datasets that support it) "
                          "or use backbone=small_cnn or mlp")
    return c, h, w


#: Config keys `build_backbone` handles itself, not the factory (part of every backbone's schema).
BUILD_KEYS: dict[str, Any] = {"weights": str | None}

BackboneFactory = Callable[..., Backbone]
BACKBONES: Registry[BackboneFactory] = Registry("backbone", plugin_group=BACKBONES_GROUP)


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator for ``factory(info: DatasetInfo, **params) -> Backbone``."""
    return BACKBONES.register(name)


def load_weights(model: nn.Module, path: str) -> None:
    """Load a local state dict (e.g. converted pretrained weights); the head may differ."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"backbone.weights={path} does not exist; give a local .pt state dict")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {file}: {exc}") from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not kept:
        raise ConfigError(f"no tensor in {file} matches backbone parameter names and shapes")
    model.load_state_dict(kept, strict=False)


def build_backbone(cfg: Mapping[str, Any], info: DatasetInfo) -> Backbone:
    """Instantiate from ``{"name": ..., "weights": path-or-null, **params}`` for a dataset."""
    params = dict(cfg)
    name = params.pop("name", None)
    weights = params.pop("weights", None)
    factory = BACKBONES.get(name)
    try:
        model = factory(info, **params)
    except TypeError as exc:
        raise ConfigError(f"backbone {name!r}: {exc}") from exc
    if weights:
        load_weights(model, weights)
    return model
