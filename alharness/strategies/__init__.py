"""Selection strategies, one module each, registered by name in `STRATEGIES`.

Dropping a new module into this package that uses ``@register_strategy`` is all it takes
for ``strategy=<name>`` to work (plus a ``configs/strategy/<name>.yaml``).
"""

from alharness.autoimport import import_submodules
from alharness.strategies.base import (
    STRATEGIES,
    SelectionContext,
    Strategy,
    build_strategy,
    register_strategy,
    validate_picks,
)

import_submodules(__name__)

__all__ = [
    "STRATEGIES",
    "SelectionContext",
    "Strategy",
    "build_strategy",
    "register_strategy",
    "validate_picks",
]
