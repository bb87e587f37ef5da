"""`DatasetInfo`: the few facts about a dataset that models, metrics and strategies
configure themselves from. Its own module so that models need not import data."""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("multiclass", "multilabel")


@dataclass(frozen=True)
class DatasetInfo:
    """What backbones and metrics configure themselves from."""

    name: str
    task: str  # "multiclass" (integer targets) or "multilabel" (multi-hot targets)
    num_classes: int
    input_shape: tuple[int, ...]  # (C, H, W) for images, (d,) for feature vectors

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3
