"""Datasets, registered by name in `DATASETS`; each loader returns a `PoolData`."""

from alharness.autoimport import import_submodules
from alharness.data.base import DATASETS, DatasetInfo, PoolData, load_dataset, register_dataset

import_submodules(__name__)

__all__ = ["DATASETS", "DatasetInfo", "PoolData", "load_dataset", "register_dataset"]
