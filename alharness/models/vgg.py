"""VGG16 with batch norm, CIFAR-style (Cluster-Margin's CIFAR/SVHN model, Sec. 5.2):
13 conv layers with five 2×2 poolings, so 32×32 inputs end at 1×1×512."""

from __future__ import annotations

from torch import nn

from alharness.bounds import Dropout
from alharness.info import DatasetInfo
from alharness.models.base import Backbone, register_backbone, require_image_input

VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


class VGG16(Backbone):
    def __init__(self, channels: int, num_classes: int, dropout: float = 0.3) -> None:
        super().__init__(512, num_classes, dropout)
        layers: list[nn.Module] = []
        c_in = channels
        for spec in VGG16_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c_in, spec, 3, padding=1, bias=False),
                           nn.BatchNorm2d(spec), nn.ReLU(inplace=True)]
                c_in = spec
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)


@register_backbone("vgg16")
def vgg16(info: DatasetInfo, dropout: Dropout = 0.3) -> VGG16:
    channels, _, _ = require_image_input("vgg16", info, min_size=32)
    return VGG16(channels, info.num_classes, dropout)
