"""ResNet-18/101 from torchvision, with an optional CIFAR stem (3×3 stride-1 first conv,
no max-pool) for 32×32 inputs, and an optional linear projection as the embedding
(ALFA-Mix's ResNet-18 projects 512 → 256)."""

from __future__ import annotations

from torch import nn
from torchvision import models as tv_models

from alharness.bounds import Count, Dropout
from alharness.info import DatasetInfo
from alharness.models.base import (
    Backbone,
    register_backbone,
    require_image_input,
)

DEPTHS = {"resnet18": tv_models.resnet18, "resnet101": tv_models.resnet101}


class ResNet(Backbone):
    def __init__(self, depth: str, channels: int, num_classes: int, cifar_stem: bool,
                 proj_dim: int | None, dropout: float) -> None:
        net = DEPTHS[depth](weights=None)
        width = net.fc.in_features
        super().__init__(proj_dim or width, num_classes, dropout)
        if cifar_stem:
            net.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
        layers = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                  net.layer3, net.layer4, net.avgpool, nn.Flatten()]
        if proj_dim:
            layers += [nn.Linear(width, proj_dim), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)


def _resnet(depth: str, info: DatasetInfo, cifar_stem: bool, proj_dim: int | None,
            dropout: float) -> ResNet:
    channels, _, _ = require_image_input(depth, info, min_size=8 if cifar_stem else 32)
    return ResNet(depth, channels, info.num_classes, cifar_stem, proj_dim, dropout)


@register_backbone("resnet18")
def resnet18(info: DatasetInfo, cifar_stem: bool = True, proj_dim: Count | None = None,
             dropout: Dropout = 0.3) -> ResNet:
    return _resnet("resnet18", info, cifar_stem, proj_dim, dropout)


@register_backbone("resnet101")
def resnet101(info: DatasetInfo, cifar_stem: bool = False, proj_dim: Count | None = None,
              dropout: Dropout = 0.3) -> ResNet:
    return _resnet("resnet101", info, cifar_stem, proj_dim, dropout)
