"""Vision Transformer from timm, built offline (``pretrained=False``; local weights only via
``backbone.weights``). A small patch size keeps enough tokens on 32×32 images."""

from __future__ import annotations

import timm
import torch

from alharness.bounds import Count, Dropout
from alharness.errors import ConfigError
from alharness.info import DatasetInfo
from alharness.models.base import (
    Backbone,
    register_backbone,
    require_image_input,
)


class ViT(Backbone):
    def __init__(self, model_name: str, channels: int, img_size: int, patch_size: int,
                 num_classes: int, dropout: float) -> None:
        body = timm.create_model(model_name, pretrained=False, num_classes=0, img_size=img_size,
                                 patch_size=patch_size, in_chans=channels)
        super().__init__(body.num_features, num_classes, dropout)
        self.body = body

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # num_classes=0: timm returns the pooled (CLS) embedding


@register_backbone("vit")
def vit(info: DatasetInfo, model_name: str = "vit_small_patch16_224", patch_size: Count = 4,
        dropout: Dropout = 0.3) -> ViT:
    channels, h, w = require_image_input("vit", info, min_size=patch_size)
    if h != w or h % patch_size:
        raise ConfigError(f"vit needs square images divisible by backbone.patch_size="
                          f"{patch_size}; dataset {info.name!r} has {h}×{w}")
    return ViT(model_name, channels, h, patch_size, info.num_classes, dropout)
