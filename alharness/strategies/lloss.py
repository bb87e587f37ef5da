"""Learning Loss (Yoo & Kweon, "Learning Loss for Active Learning", CVPR 2019, arXiv
1905.03677): a small loss-prediction module, trained jointly with the classifier, predicts
each point's loss from intermediate features; the unlabelled points with the highest
predicted loss are queried (Sec. 3).

Module (Sec. 3.3, Fig. 2): every tapped feature map is global-average-pooled, passed
through FC(·, 128) + ReLU; the results are concatenated and mapped by one FC to a scalar
(ResNet-18 on CIFAR: maps of 64/128/256/512 channels at 32/16/8/4 pixels, as the
``LossNet`` of the public code). Loss (Sec. 3.2, Eq. 2): the batch is split into pairs
(i, B−1−i) and each pair pays max(0, −sign(l_i − l_j)·(l̂_i − l̂_j) + ξ), a tie counting as
l_i < l_j; the total is L_target + λ·L_loss with ξ = 1 and λ = 1 (Sec. 4.1). The authors
released no code; pairing, tie rule and mean over pairs follow the public reproduction
(``Mephisto405/Learning-Loss-for-Active-Learning``), whose ``LossPredLoss``, ``LossNet``
and ``config.py`` (``MARGIN = 1.0``, ``WEIGHT = 1.0``, ``EPOCHL = 120``, ``SUBSET = 10000``)
CoreGCN's official repository reuses. The module's parameters join the trainer's
optimiser (the reproduction gives it a second optimiser with the backbone's settings).

Gradient stop (Sec. 4.1: "after 120 epochs", of 200): the module's input features are
detached from epoch ``round(stop_grad_after · trainer.epochs)`` on (0-based), so with
``stop_grad_after = 0.6`` a run with fewer epochs keeps the paper's proportion and 200
epochs give exactly 120 coupled ones (the reproduction's ``epoch > EPOCHL`` couples 121).
The module itself keeps learning after the stop. With ``trainer.stop_at_train_acc``,
training may end before that epoch. Only 10,000 random unlabelled points are scored per
cycle (Sec. 4.1, following Beluch et al. 2018).

Which features are tapped (``taps: null``): the paper taps the four residual stages of
ResNet-18. In general, the outputs of the children of ``model.body`` that end a
resolution stage (a feature map larger than 1×1 followed by a different spatial size):
ResNet's ``layer1``–``layer4`` exactly, VGG's last ReLU before each pooling, the small
CNN's two blocks. A body without spatial stages (MLP, ViT, precomputed features) is
tapped at its output, the penultimate embedding. ``taps`` may instead name modules of
``model.named_modules()`` (e.g. ``[body.5, body.6]``).

The module is re-created at the start of every cycle's training when the trainer resets
the backbone (``trainer.reinit=true``, the harness's default); with ``reinit=false`` it
carries over, as the backbone does. Both public codes tie the module to the backbone
this way: Mephisto405's keeps both across cycles, CoreGCN's repository re-creates both
every cycle. Carried-over weights live in the run's checkpointed cache (written when
training ends, before the cycle's checkpoint), so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from alharness.errors import ConfigError, SelectionError
from alharness.ops.topk import top_k
from alharness.strategies.base import SelectionContext, Strategy, register_strategy
from alharness.strategies.subset import check_subset, unlabelled_subset

#: Key of the module's weights in the run cache (only with ``trainer.reinit=false``).
CACHE_KEY = "lloss_module"


def global_pool(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → mean over H, W; (N, T, D) tokens → mean over T; (N, D) unchanged."""
    if t.dim() == 4:
        return t.mean(dim=(2, 3))
    if t.dim() == 3:
        return t.mean(dim=1)
    return t.flatten(1)


class LossNet(nn.Module):
    """Sec. 3.3: per tap GAP → FC(c, width) → ReLU; concatenate; FC → predicted loss."""

    def __init__(self, channels: Sequence[int], width: int = 128) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Linear(c, width) for c in channels)
        self.out = nn.Linear(width * len(channels), 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        parts = [torch.relu(fc(global_pool(f))) for fc, f in zip(self.branches, features, strict=True)]
        return self.out(torch.cat(parts, dim=1))[:, 0]


def ranking_loss(predicted: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Eq. 2, averaged over the pairs (i, B−1−i) of the batch (the middle one of an odd
    batch is left out); ``target`` (the true per-example losses) gets no gradient."""
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    target = target.detach()
    sign = torch.where(target[:half] > target.flip(0)[:half], 1.0, -1.0)
    gap = predicted[:half] - predicted.flip(0)[:half]
    return torch.clamp(margin - sign * gap, min=0).mean()


def stage_taps(model: nn.Module, example: torch.Tensor) -> list[tuple[str, int]]:
    """(module name, channels) of the default taps (see the module docstring), found by one
    eval-mode forward pass on ``example``."""
    body = getattr(model, "body", None)
    if not isinstance(body, nn.Module):
        raise ConfigError("lloss: the model has no `body` to tap; name modules to tap with "
                          "strategy.taps")
    children = list(body.named_children()) if isinstance(body, nn.Sequential) else []
    names = [f"body.{name}" for name, _ in children]
    shapes = _output_shapes(model, example, ["body", *names])
    taps = []
    for i, name in enumerate(names):
        shape = shapes[name]
        after = shapes[names[i + 1]] if i + 1 < len(names) else None
        if len(shape) == 4 and shape[2] * shape[3] > 1 and (after is None or after[2:] != shape[2:]):
            taps.append((name, shape[1]))
    return taps or [("body", _channels(shapes["body"]))]


def named_taps(model: nn.Module, example: torch.Tensor, names: Sequence[str]) -> list[tuple[str, int]]:
    """(name, channels) of explicitly configured taps."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        known = ", ".join(n for n in list(modules)[:12] if n)
        raise ConfigError(f"lloss: strategy.taps {missing} are not modules of the model "
                          f"(e.g. {known}, …)")
    shapes = _output_shapes(model, example, names)
    return [(n, _channels(shapes[n])) for n in names]


@contextmanager
def captured_outputs(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """The outputs of ``model``'s modules ``names`` in the forward passes run while open."""
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, n=name: captured.__setitem__(n, out)) for name in names]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _output_shapes(model: nn.Module, example: torch.Tensor,
                   names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    was_training = model.training
    try:
        with torch.no_grad(), captured_outputs(model, names) as captured:
            model.eval()(example)
    finally:
        model.train(was_training)
    return {name: tuple(out.shape) for name, out in captured.items()}


@torch.no_grad()
def predicted_losses(model: nn.Module, x: torch.Tensor, module: LossNet,
                     tap_names: Sequence[str]) -> torch.Tensor:
    """Predicted losses of a batch (the model in eval mode): what `LearningLoss` maps over
    the pool with `SelectionContext.map_inputs` (``module`` may arrive on another device)."""
    with captured_outputs(model, tap_names) as captured:
        model(x)
    return module.to(x.device)([captured[name] for name in tap_names]).float()


def _channels(shape: tuple[int, ...]) -> int:
    """Width of `global_pool`'s output for a tap's output shape."""
    if len(shape) == 4:
        return int(shape[1])
    if len(shape) == 3:
        return int(shape[2])
    return int(np.prod(shape[1:]))


class LossPredictionAddon:
    """The `alharness.training.trainer.TrainingAddon` of Learning Loss: forward hooks on the
    tapped modules capture their outputs during the classifier's forward pass, and the
    module is trained on them with the ranking loss."""

    def __init__(self, cache: dict[str, Any], taps: Sequence[str] | None = None, width: int = 128,
                 margin: float = 1.0, weight: float = 1.0, stop_grad_after: float = 0.6) -> None:
        self.cache, self.taps, self.width = cache, taps, width
        self.margin, self.weight, self.stop_grad_after = margin, weight, stop_grad_after
        self.module: LossNet | None = None
        self.tap_names: list[str] = []
        self.stop_epoch = 0
        self.carry_over = False
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks = ExitStack()

    def attach(self, model: nn.Module, example: torch.Tensor, cfg: Any) -> None:
        found = named_taps(model, example, self.taps) if self.taps else stage_taps(model, example)
        self.tap_names = [name for name, _ in found]
        self.module = LossNet([c for _, c in found], self.width).to(example.device)
        self.carry_over = not cfg.reinit
        if self.carry_over and CACHE_KEY in self.cache:
            self.module.load_state_dict({k: torch.as_tensor(v) for k, v in self.cache[CACHE_KEY].items()})
        self.module.train()
        self.stop_epoch = round(self.stop_grad_after * cfg.epochs)
        self._captured = self._hooks.enter_context(captured_outputs(model, self.tap_names))

    def parameters(self) -> list[nn.Parameter]:
        return list(self.module.parameters())

    def extra_loss(self, model: nn.Module, per_example_loss: torch.Tensor, epoch: int) -> torch.Tensor:
        features = [self._captured[name] for name in self.tap_names]
        if epoch >= self.stop_epoch:  # Sec. 4.1: the module stops shaping the backbone
            features = [f.detach() for f in features]
        predicted = self.module(features).float()
        return self.weight * ranking_loss(predicted, per_example_loss.float(), self.margin)

    def detach(self) -> None:
        self._hooks.close()
        self._captured = {}
        self.module.eval()
        if self.carry_over:
            self.cache[CACHE_KEY] = {k: v.detach().cpu().numpy()
                                     for k, v in self.module.state_dict().items()}


@register_strategy("lloss")
class LearningLoss(Strategy):
    """The ``budget`` unlabelled points (of a random ``subset``) with the highest loss
    predicted by the jointly trained module."""

    needs: ClassVar[frozenset[str]] = frozenset({"model", "inputs"})

    def __init__(self, margin: float = 1.0, weight: float = 1.0, stop_grad_after: float = 0.6,
                 width: int = 128, taps: Sequence[str] | None = None,
                 subset: int | None = 10_000, batch_size: int | None = None) -> None:
        if float(margin) < 0 or float(weight) < 0 or not 0 <= float(stop_grad_after) <= 1:
            raise ConfigError(f"lloss: margin={margin} and weight={weight} must be ≥ 0, "
                              f"stop_grad_after={stop_grad_after} in [0, 1]")
        if int(width) < 1 or (taps is not None and (isinstance(taps, str) or not len(taps))):
            raise ConfigError(f"lloss: width={width} must be ≥ 1 and taps a non-empty list of "
                              "module names or null")
        self.margin = float(margin)
        self.weight = float(weight)
        self.stop_grad_after = float(stop_grad_after)
        self.width = int(width)
        self.taps = None if taps is None else [str(t) for t in taps]
        self.subset = check_subset(subset, "lloss")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._addon: LossPredictionAddon | None = None

    def training_addon(self, cache: dict[str, Any]) -> LossPredictionAddon:
        self._addon = LossPredictionAddon(cache, self.taps, self.width, self.margin,
                                          self.weight, self.stop_grad_after)
        return self._addon

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        if self._addon is None or self._addon.module is None:
            raise SelectionError("lloss: no loss-prediction module was trained this cycle; it "
                                 "is built by the trainer through Strategy.training_addon")
        ctx.model.eval()
        pool = ctx.unlabelled[unlabelled_subset(ctx, self.subset, budget)]
        predict = partial(predicted_losses, module=self._addon.module.cpu(),  # pickled to ranks
                          tap_names=self._addon.tap_names)
        (scores,) = ctx.map_inputs(predict, pool, self.batch_size)
        return pool[top_k(scores, budget, ctx.rng, largest=True)]
