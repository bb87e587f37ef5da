"""The strategy contract: what a strategy may ask for, and what it must return.

A strategy declares the model outputs it ``needs`` (LabelBench style). The runner hands
it a `SelectionContext` whose outputs are computed lazily, once per cycle, and only if
declared: asking for an undeclared output is an error, so ``needs`` stays honest.
``select(ctx, budget)`` returns pool indices: unique, unlabelled, exactly ``budget`` long
(or every unlabelled index when fewer remain). `validate_picks` enforces that.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from alharness.errors import SelectionError
from alharness.plugins import STRATEGIES_GROUP
from alharness.registry import Registry

#: Every model output a strategy may declare in ``needs``. ``inputs`` are the pool's model
#: inputs (test transforms, on the device), for strategies that run the model themselves.
OUTPUT_KINDS = frozenset({"probs", "embeddings", "grad_embeddings", "mc_probs", "model",
                          "inputs"})

#: Which indices an output is asked for.
WHICH = ("unlabelled", "labelled", "pool")


class PoolOutputs(Protocol):
    """Model outputs over pool indices; implemented by the runner (torch) and by
    `alharness.strategies.outputs.ArrayOutputs` (precomputed arrays, for tests and benchmarks)."""

    def probs(self, idx: np.ndarray) -> np.ndarray:
        """(n, C) float32: softmax probabilities, or per-class sigmoids for multi-label."""

    def embeddings(self, idx: np.ndarray) -> np.ndarray:
        """(n, d) float32 penultimate-layer embeddings (the input of ``model.head``)."""

    def mc_probs(self, idx: np.ndarray, passes: int) -> np.ndarray:
        """(passes, n, C) float32 probabilities with dropout active (MC dropout)."""

    def inputs(self, idx: np.ndarray, batch_size: int | None = None) -> Iterator[tuple[np.ndarray, Any]]:
        """Batches ``(pool indices, x)`` covering ``idx`` in order: ``x`` is the model's input
        (a torch tensor with *test* transforms, on ``device``), so a strategy can run the
        model itself (DeepFool's gradients, a loss-prediction module's hooks)."""

    def map_inputs(self, fn: Callable[[Any, Any], Any], idx: np.ndarray,
                   batch_size: int | None = None) -> tuple[np.ndarray, ...]:
        """``fn(model, x)`` on every batch of ``inputs(idx)``; its per-row outputs (a tensor
        or a tuple of tensors) concatenated in ``idx`` order, one array per output."""

    @property
    def model(self) -> Any:
        """The backbone (``features``, ``head``, ``embed_dim``) in eval mode, on ``device``."""

    @property
    def device(self) -> Any:
        """The torch device the model lives on."""


@dataclass(frozen=True)
class GradEmbedding:
    """BADGE's gradient embedding in factorised form: row i is ``scale[i] ⊗ features[i]``.

    The dense (n, C·d) matrix is never built; see `alharness.ops` for distances on it.
    """

    scale: np.ndarray  # (n, C): d loss / d logits at the pseudo-label
    features: np.ndarray  # (n, d): penultimate embeddings


@dataclass
class SelectionContext:
    """Everything a strategy sees in one cycle.

    ``cache`` lives for the whole run and is saved in the run's checkpoint, so whatever a
    strategy stores there (numpy arrays, numbers, strings) survives a resume.
    ``diagnostics`` are numbers the strategy wants in this cycle's results row.
    ``labelled_targets`` are the oracle's labels of ``labelled`` (aligned with it; int ids,
    or multi-hot rows for multi-label), for strategies that use true labels (ALFA-Mix's
    class anchors); None where the caller has none.
    """

    labelled: np.ndarray
    unlabelled: np.ndarray
    outputs: PoolOutputs
    needs: frozenset[str]
    rng: np.random.Generator
    cache: dict[str, Any] = field(default_factory=dict)
    task: str = "multiclass"
    num_classes: int = 0
    cycle: int = 0
    pool_size: int = 0
    diagnostics: dict[str, float | str] = field(default_factory=dict)
    labelled_targets: np.ndarray | None = None

    def indices(self, which: str = "unlabelled") -> np.ndarray:
        if which == "unlabelled":
            return self.unlabelled
        if which == "labelled":
            return self.labelled
        if which == "pool":
            return np.arange(self.pool_size, dtype=np.int64)
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")

    def _require(self, kind: str) -> None:
        if kind not in self.needs:
            raise SelectionError(
                f"the strategy asked for {kind!r} but did not declare it in `needs` "
                f"(declared: {sorted(self.needs)})"
            )

    def probs(self, which: str = "unlabelled") -> np.ndarray:
        self._require("probs")
        return self.outputs.probs(self.indices(which))

    def embeddings(self, which: str = "unlabelled") -> np.ndarray:
        self._require("embeddings")
        return self.outputs.embeddings(self.indices(which))

    def mc_probs(self, passes: int, which: str = "unlabelled") -> np.ndarray:
        self._require("mc_probs")
        return self.outputs.mc_probs(self.indices(which), passes)

    def inputs(self, which: str | np.ndarray = "unlabelled",
               batch_size: int | None = None) -> Iterator[tuple[np.ndarray, Any]]:
        """Lazily stream ``(pool indices, x)`` batches (see `PoolOutputs.inputs`).

        ``which`` is a name from `WHICH` or an explicit array of pool indices (e.g. a random
        subset of the unlabelled pool). Nothing is computed or held beyond one batch.
        """
        self._require("inputs")
        idx = self.indices(which) if isinstance(which, str) else np.asarray(which, np.int64)
        return self.outputs.inputs(idx, batch_size)

    def map_inputs(self, fn: Callable[[Any, Any], Any], which: str | np.ndarray = "unlabelled",
                   batch_size: int | None = None) -> tuple[np.ndarray, ...]:
        """``fn(model, x)`` on every batch of `inputs` (``which`` as there); the per-row
        outputs (a tensor or a tuple of tensors) concatenated, one numpy array per output.

        Prefer it to iterating `inputs` when the per-batch work is the cost (DeepFool, a
        loss-prediction module): a run over several processes shards it, each process
        calling ``fn`` on its own copy of the model, so ``fn`` must be picklable (a
        module-level function, or a ``functools.partial`` of one with picklable values).
        """
        self._require("inputs")
        idx = self.indices(which) if isinstance(which, str) else np.asarray(which, np.int64)
        return self.outputs.map_inputs(fn, idx, batch_size)

    def grad_embeddings(self, which: str = "unlabelled") -> GradEmbedding:
        """Gradient of the cross-entropy at the pseudo-label w.r.t. the last layer, factorised.

        For softmax outputs d CE(ŷ) / d logits = p − onehot(ŷ), ŷ = argmax p; BADGE uses its
        negation (onehot − p). The sign does not change any distance. Multi-label (per-class
        sigmoid + binary cross-entropy) has the same form per class with ŷ_c = [p_c > 0.5],
        so the scale is ŷ − p.
        """
        self._require("grad_embeddings")
        idx = self.indices(which)
        probs = self.outputs.probs(idx)
        scale = -probs.astype(np.float32, copy=True)
        if self.task == "multilabel":
            scale += probs > 0.5
        else:
            scale[np.arange(len(idx)), probs.argmax(axis=1)] += 1.0
        return GradEmbedding(scale=scale, features=self.outputs.embeddings(idx))

    @property
    def model(self) -> Any:
        self._require("model")
        return self.outputs.model

    @property
    def device(self) -> Any:
        return self.outputs.device

    def record(self, key: str, value: float | str) -> None:
        """Put a diagnostic number (e.g. CoreSet's cover radius) or word (e.g. which
        backend ran) into this cycle's row."""
        self.diagnostics[key] = value if isinstance(value, str) else float(value)


class Strategy(ABC):
    """Base class. Subclasses set ``needs`` and implement `select`.

    Constructor keyword arguments are the strategy's config parameters
    (``configs/strategy/<name>.yaml``, everything but ``name``).
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()

    def prepare(self, ctx: SelectionContext) -> None:
        """Optional work before `select`, timed separately (e.g. Cluster-Margin's one-time
        clustering of the pool, kept in ``ctx.cache``). Called every cycle."""
        return None

    @abstractmethod
    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        """Return ``budget`` unique unlabelled pool indices (all of them if fewer remain)."""

    def training_addon(self, cache: dict[str, Any]) -> Any | None:
        """An optional `alharness.training.trainer.TrainingAddon` the trainer trains jointly
        with the classifier (e.g. Learning Loss's loss-prediction module); called before
        every cycle's training. ``cache`` is the run's checkpointed cache (``ctx.cache``),
        where an add-on whose weights carry over cycles (``trainer.reinit=false``) keeps
        them so a resumed run continues from the same state."""
        return None

    def params(self) -> dict[str, Any]:
        """The constructor parameters, as configured (for results rows and labels)."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", plugin_group=STRATEGIES_GROUP)


def register_strategy(name: str):
    """Class decorator: register a `Strategy` subclass under ``name`` and set its ``name``."""

    def add(cls: type[Strategy]) -> type[Strategy]:
        unknown = set(cls.needs) - OUTPUT_KINDS
        if unknown:
            raise ValueError(f"strategy {name!r} declares unknown outputs {sorted(unknown)}")
        cls.name = name
        return STRATEGIES.register(name)(cls)

    return add


def build_strategy(cfg: Mapping[str, Any]) -> Strategy:
    """Instantiate from a config mapping ``{"name": ..., **params}``, checked against the
    constructor's type hints first (`alharness.config.components`), as a run's config is:
    a bad value is the same one-line `ConfigError` from Python as from ``run.py``."""
    from alharness.config.components import check_component

    params = check_component("strategy", cfg)
    return STRATEGIES.get(params.pop("name"))(**params)


def validate_picks(picks: np.ndarray, ctx: SelectionContext, budget: int, name: str) -> np.ndarray:
    """Check the selection contract; a violation is a bug in the strategy, so raise loudly."""
    picks = np.asarray(picks, dtype=np.int64).ravel()
    expected = min(budget, len(ctx.unlabelled))
    if len(picks) != expected:
        raise SelectionError(f"strategy {name!r} returned {len(picks)} indices, expected {expected}")
    if len(np.unique(picks)) != len(picks):
        raise SelectionError(f"strategy {name!r} returned duplicate indices")
    if not np.isin(picks, ctx.unlabelled).all():
        raise SelectionError(f"strategy {name!r} returned indices that are not unlabelled")
    return picks
