"""DFAL (Ducoffe & Precioso, 2018, arXiv 1802.09841): query the unlabelled points closest to
the decision boundary, the distance being approximated by the norm of the adversarial
perturbation DeepFool finds (Moosavi-Dezfooli et al., CVPR 2016, Sec. 3, Algorithm 2).

Only the query rule is implemented (Sec. 3 of DFAL, as in ALFA-Mix's DFAL baseline); the
paper's extra step of adding each queried point's adversarial example, with the same
label, to the training set is not, since the harness trains on labelled pool points only.

Deliberate differences from ALFA-Mix's port (``query_strategies/adversarial_deepfool.py``):
the model runs in eval mode on *test* transforms (the port used training transforms); the
step goes to the closest boundary among the candidate classes (the port never updated its
running minimum, so it always stepped toward the last class); points are processed in
batches on the model's device (the port ran one point at a time on the CPU); DeepFool's
overshoot is applied as in its reference implementation (the port had none). The port
looks at every class; DeepFool's reference code (and the default here) at the 10 with the
highest original logits, which is the same for 10-class data (``candidates: null`` = all).

Points whose prediction does not flip within ``max_iter`` steps have no adversarial
perturbation, so they are ranked after every point that has one (by their accumulated
perturbation among themselves). The port and the reference code would score them by the
accumulated perturbation alone, which puts a point with vanishing input gradients (all
ReLUs dead: the steps are zero) first, as if it sat on the boundary.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from alharness.errors import ConfigError
from alharness.ops.topk import top_k
from alharness.strategies.base import SelectionContext, Strategy, register_strategy
from alharness.strategies.subset import check_subset, unlabelled_subset

#: DeepFool's reference code adds this to every step's length "for numerical stability".
STEP_SLACK = 1e-4


class DeepFoolResult(NamedTuple):
    perturbation: torch.Tensor  # (1 + overshoot)·Σ r_i, shaped like the inputs
    steps: torch.Tensor  # steps taken per point
    flipped: torch.Tensor  # whether the prediction at x + perturbation differs from k̂


def deepfool(model: nn.Module, x: torch.Tensor, max_iter: int = 50, overshoot: float = 0.02,
             candidates: int | None = 10) -> DeepFoolResult:
    """Batched multi-class DeepFool (Moosavi-Dezfooli et al., 2016, Algorithm 2).

    Each point is linearised around its current iterate; among the ``candidates`` classes
    with the highest original logits (None: all), the step goes to the closest linearised
    boundary l = argmin_k |f'_k| / ‖w'_k‖ with f'_k = f_k − f_k̂ and w'_k = ∇f_k − ∇f_k̂
    (k̂ the original prediction): r_i = (|f'_l| / ‖w'_l‖ + 1e-4) · w'_l / ‖w'_l‖, as in the
    reference code. The running minimum over k is updated for every class, so the step
    aims at the nearest boundary. Iterates are x + (1 + overshoot)·Σr_i; a point stops
    when its prediction there changes or after ``max_iter`` steps. Points are independent
    (``model`` must be in eval mode), so one backward pass per candidate class serves the
    whole batch, and points leave the batch once flipped.
    """
    x = x.detach().float()
    with torch.no_grad():
        logits = model(x).float()
    k = logits.shape[1] if candidates is None else min(int(candidates), logits.shape[1])
    classes = logits.topk(k, dim=1).indices  # column 0 = k̂
    r_tot = torch.zeros_like(x)
    steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
    active = torch.arange(len(x), device=x.device)
    for step in range(max_iter + 1):
        xa = (x[active] + (1 + overshoot) * r_tot[active]).requires_grad_(True)
        f = model(xa).float()
        keep = f.argmax(dim=1) == classes[active, 0]
        active = active[keep]
        if len(active) == 0 or step == max_iter:
            break
        r_tot[active] += _step(f[keep].gather(1, classes[active]), xa, keep)
        steps[active] += 1
    flipped = torch.ones(len(x), dtype=torch.bool, device=x.device)
    flipped[active] = False
    return DeepFoolResult((1 + overshoot) * r_tot, steps, flipped)


def deepfool_scores(model: nn.Module, x: torch.Tensor, max_iter: int, overshoot: float,
                    candidates: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L2 norm of DeepFool's perturbation (float64), whether it flipped the prediction)
    for one batch: what `DFAL` maps over the pool with `SelectionContext.map_inputs`."""
    found = deepfool(model, x, max_iter, overshoot, candidates)
    return found.perturbation.flatten(1).norm(dim=1).double(), found.flipped


def _step(f: torch.Tensor, xa: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """One DeepFool step for the ``rows`` of ``xa`` whose candidate logits are ``f``
    (column 0: the original class)."""

    def grad(k: int) -> torch.Tensor:
        return torch.autograd.grad(f[:, k].sum(), xa, retain_graph=True)[0][rows].flatten(1)

    g0 = grad(0)
    best = torch.full((len(f),), torch.inf, device=f.device)  # distance to the boundary
    best_w = torch.zeros_like(g0)
    for k in range(1, f.shape[1]):
        w = grad(k) - g0
        dist = (f[:, k] - f[:, 0]).detach().abs() / w.norm(dim=1).clamp_min(1e-12)
        closer = dist < best
        best = torch.where(closer, dist, best)
        best_w[closer] = w[closer]
    unit = best_w / best_w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    step = (best.nan_to_num(0.0, posinf=0.0) + STEP_SLACK)[:, None] * unit
    return step.view(len(f), *xa.shape[1:])


@register_strategy("dfal")
class DFAL(Strategy):
    """The ``budget`` unlabelled points with the smallest DeepFool perturbation (L2 norm,
    in the model's input space after test transforms); points DeepFool could not flip
    come last.

    Records ``dfal_unconverged``, the fraction of scored points whose prediction did not
    flip within ``max_iter`` steps.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"model", "inputs"})

    def __init__(self, max_iter: int = 50, overshoot: float = 0.02, candidates: int | None = 10,
                 batch_size: int | None = None, subset: int | None = None) -> None:
        if int(max_iter) < 1 or float(overshoot) < 0 or (candidates is not None and int(candidates) < 2):
            raise ConfigError(f"dfal: max_iter={max_iter} must be ≥ 1, overshoot={overshoot} "
                              f"≥ 0 and candidates={candidates} ≥ 2 (or null for all classes)")
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"dfal: batch_size={batch_size} must be ≥ 1 or null")
        self.max_iter = int(max_iter)
        self.overshoot = float(overshoot)
        self.candidates = None if candidates is None else int(candidates)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.subset = check_subset(subset, "dfal")

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        if ctx.task != "multiclass":
            raise ConfigError(f"dfal needs single-label (multiclass) data; this dataset is "
                              f"{ctx.task}: pick another strategy")
        ctx.model.eval()
        pool = ctx.unlabelled[unlabelled_subset(ctx, self.subset, budget)]
        scores, converged = ctx.map_inputs(
            partial(deepfool_scores, max_iter=self.max_iter, overshoot=self.overshoot,
                    candidates=self.candidates), pool, self.batch_size)
        ctx.record("dfal_unconverged", float((~converged).mean()) if len(pool) else 0.0)
        scores[~converged] += scores[converged].max(initial=0.0) + 1.0  # after every flipped point
        return pool[top_k(scores, budget, ctx.rng, largest=False)]
