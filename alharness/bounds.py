"""Bounded numbers for type hints. A parameter's range written into its hint is checked
by the config schema (`alharness.config`) before anything runs, and said in its error
message, e.g. ``dataset.split_seed: out of range (got -1; expected an integer ≥ 0)``."""

from typing import Annotated

from annotated_types import Ge, Gt, Interval

#: A size or count: at least 1.
Count = Annotated[int, Ge(1)]
#: Things to compare: at least 2 (MC-dropout passes, candidate classes).
Several = Annotated[int, Ge(2)]
#: A seed, or a size that may be 0.
NonNegative = Annotated[int, Ge(0)]
#: A probability that must leave something: 0 ≤ p < 1 (e.g. dropout).
Dropout = Annotated[float, Interval(ge=0, lt=1)]
#: A size that may be left out: at least 1, or None for "all" (e.g. ``strategy.subset``).
Size = Count | None
#: A positive number (a step, a rate).
Positive = Annotated[float, Gt(0)]
#: A number that may be 0 (a weight, a margin, a slack).
NonNegativeNumber = Annotated[float, Ge(0)]
#: A fraction of a whole: 0 ≤ f ≤ 1.
Fraction = Annotated[float, Interval(ge=0, le=1)]
