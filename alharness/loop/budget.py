"""The budget schedule: an initial labelled set, then ``cycles`` batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alharness.data.initial import INITIAL_MODES
from alharness.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    """``batch`` is one size for every cycle or a list with one size per cycle."""

    initial: int
    batch: int | tuple[int, ...]
    cycles: int
    initial_mode: str = "uniform"

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> Budget:
        params = dict(cfg)
        params.pop("name", None)
        known = {"initial", "batch", "cycles", "initial_mode"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown budget option(s) {unknown}; valid: {sorted(known)}")
        batch = params.get("batch", 0)
        if isinstance(batch, Sequence) and not isinstance(batch, str):
            params["batch"] = tuple(int(b) for b in batch)
        budget = cls(**params)
        budget.validate()
        return budget

    def validate(self) -> None:
        if self.initial < 1 or self.cycles < 0:
            raise ConfigError("budget.initial must be ≥ 1 and budget.cycles ≥ 0")
        if isinstance(self.batch, tuple) and len(self.batch) != self.cycles:
            raise ConfigError(f"budget.batch lists {len(self.batch)} sizes for "
                              f"budget.cycles={self.cycles}; give one per cycle")
        if min(self.batches(), default=1) < 1:
            raise ConfigError("budget.batch must be ≥ 1")
        if self.initial_mode not in INITIAL_MODES:
            raise ConfigError(f"budget.initial_mode={self.initial_mode!r}; use one of "
                              f"{INITIAL_MODES}")

    def batches(self) -> list[int]:
        if isinstance(self.batch, tuple):
            return list(self.batch)
        return [int(self.batch)] * self.cycles

    def total(self) -> int:
        return self.initial + sum(self.batches())

    def check_pool(self, pool_size: int) -> None:
        if self.total() > pool_size:
            raise ConfigError(
                f"the budget needs {self.total()} labels (budget.initial={self.initial} + "
                f"{self.cycles} cycles of budget.batch={self.batch}) but the pool has "
                f"{pool_size}; lower budget.cycles or budget.batch")

    def label(self) -> str:
        batch = "-".join(map(str, self.batch)) if isinstance(self.batch, tuple) else self.batch
        return f"{self.initial}+{batch}x{self.cycles}"
