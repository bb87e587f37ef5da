"""The budget schedule: an initial labelled set, then ``cycles`` batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alharness.bounds import Count, NonNegative
from alharness.data.initial import INITIAL_MODES
from alharness.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """``batch`` is one size for every cycle or a list with one size per cycle; the type
    hints are the schema ``configs/budget/*.yaml`` is checked against."""

    initial: Count
    batch: Count | Sequence[Count]
    cycles: NonNegative
    initial_mode: Literal[INITIAL_MODES] = "uniform"

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int):
            object.__setattr__(self, "batch", tuple(self.batch))
        if isinstance(self.batch, tuple) and len(self.batch) != self.cycles:
            raise ConfigError(f"budget.batch: lists {len(self.batch)} size(s) for {self.cycles} cycles "
                              f"(got {list(self.batch)}; expected one size per cycle, or one "
                              "size for all)")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> Budget:
        """Validated against the fields' type hints; a bad value is a one-line `ConfigError`."""
        from alharness.config.sections import build_dataclass

        params = dict(cfg)
        params.pop("name", None)
        return build_dataclass(cls, params, "budget")

    def batches(self) -> list[int]:
        if isinstance(self.batch, tuple):
            return list(self.batch)
        return [int(self.batch)] * self.cycles

    def total(self) -> int:
        return self.initial + sum(self.batches())

    def check_pool(self, pool_size: int) -> None:
        if self.total() > pool_size:
            raise ConfigError(
                f"budget: needs {self.total()} labels but the pool has {pool_size} "
                f"(got budget.initial={self.initial} + {self.cycles} cycles of "
                f"budget.batch={self.batch}; expected at most {pool_size}: lower "
                "budget.cycles or budget.batch)")

    def label(self) -> str:
        batch = "-".join(map(str, self.batch)) if isinstance(self.batch, tuple) else self.batch
        return f"{self.initial}+{batch}x{self.cycles}"
