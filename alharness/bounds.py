"""Bounded numbers for type hints. A parameter's range written into its hint is checked
by the config schema (`alharness.config`) before anything runs, and said in its error
message, e.g. ``dataset.split_seed: out of range (got -1; expected an integer ≥ 0)``."""

from typing import Annotated

from annotated_types import Ge, Interval

#: A size or count: at least 1.
Count = Annotated[int, Ge(1)]
#: A seed, or a size that may be 0.
NonNegative = Annotated[int, Ge(0)]
#: A probability that must leave something: 0 ≤ p < 1 (e.g. dropout).
Dropout = Annotated[float, Interval(ge=0, lt=1)]
