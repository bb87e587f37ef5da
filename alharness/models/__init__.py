"""Backbones, registered by name in `BACKBONES`; each splits into ``features`` and ``head``."""

from alharness.autoimport import import_submodules
from alharness.models.base import BACKBONES, Backbone, build_backbone, mc_dropout, register_backbone

import_submodules(__name__)

__all__ = ["BACKBONES", "Backbone", "build_backbone", "mc_dropout", "register_backbone"]
