"""MLP for feature vectors (ALFA-Mix's MNIST/OpenML model: one hidden layer of 256).

``hidden=[]`` gives a linear classifier on the inputs (the embedding is the input),
the usual head for precomputed features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from alharness.bounds import Count, Dropout
from alharness.info import DatasetInfo
from alharness.models.base import Backbone, register_backbone


class MLP(Backbone):
    def __init__(self, in_dim: int, num_classes: int, hidden: Sequence[int] = (256,),
                 dropout: float = 0.3) -> None:
        widths = [in_dim, *hidden]
        super().__init__(widths[-1], num_classes, dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)


@register_backbone("mlp")
def mlp(info: DatasetInfo, hidden: Sequence[Count] = (256,), dropout: Dropout = 0.3) -> MLP:
    return MLP(math.prod(info.input_shape), info.num_classes, list(hidden), dropout)


@register_backbone("linear")
def linear(info: DatasetInfo, dropout: Dropout = 0.3) -> MLP:
    """A linear classifier on the inputs: an MLP without hidden layers, registered under
    its own name so that results say which of the two ran."""
    return MLP(math.prod(info.input_shape), info.num_classes, [], dropout)
