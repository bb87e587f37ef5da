"""A one-hidden-layer network written against alharness's backbone contract: ``body``
maps inputs to the embedding, the base class adds dropout and the linear head."""

from __future__ import annotations

import math

from torch import nn

from alharness.info import DatasetInfo
from alharness.models.base import Backbone, register_backbone


class TinyMLP(Backbone):
    def __init__(self, in_dim: int, num_classes: int, width: int, dropout: float) -> None:
        super().__init__(width, num_classes, dropout)  # embed_dim = width
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, width), nn.Tanh())


@register_backbone("tiny_mlp")
def tiny_mlp(info: DatasetInfo, width: int = 32, dropout: float = 0.1) -> TinyMLP:
    """Sized from the dataset: inputs of any shape (flattened), ``info.num_classes`` logits."""
    return TinyMLP(math.prod(info.input_shape), info.num_classes, width, dropout)
