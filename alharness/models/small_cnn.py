"""A small CNN that fits any image size ≥ 4×4 (the default digits run uses 8×8 inputs)."""

from __future__ import annotations

from torch import nn

from alharness.bounds import Count, Dropout
from alharness.info import DatasetInfo
from alharness.models.base import (
    Backbone,
    register_backbone,
    require_image_input,
)


class SmallCNN(Backbone):
    """Two conv-BN-ReLU blocks with pooling, global average pool, a linear embedding."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, embed_dim: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__(embed_dim, num_classes, dropout)

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(channels, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2 * width, embed_dim), nn.ReLU(inplace=True),
        )


@register_backbone("small_cnn")
def small_cnn(info: DatasetInfo, width: Count = 32, embed_dim: Count = 128,
              dropout: Dropout = 0.3) -> SmallCNN:
    channels, _, _ = require_image_input("small_cnn", info, min_size=4)
    return SmallCNN(channels, info.num_classes, width, embed_dim, dropout)
