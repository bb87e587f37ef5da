"""ALFA-Mix: Active Learning by Feature Mixing (Parvaneh et al., CVPR 2022, arXiv 2203.07034).

An unlabelled point is a *candidate* when moving its embedding a little towards the
anchor (mean labelled embedding) of some class changes the model's prediction (Sec. 3.1):
its features are ones the model has not learnt to handle. Candidates are then made
diverse by k-means (Sec. 3.3). The procedure follows the official code
(``query_strategies/alpha_mix_sampling.py`` of AminParvaneh/alpha_mix_active_learning),
with its defects fixed rather than copied:

- the mixing runs on blocks of (unlabelled point, anchor) pairs, O(chunk_size · d)
  memory, where the official code builds pool × d tensors per anchor and keeps an
  α of pool × d;
- an empty candidate set gives a uniformly random batch instead of a crash, and the
  shortfall is filled *without* replacement (the official code samples with replacement,
  so a batch could repeat an index);
- a vanished gradient (saturated softmax) leaves the point unmoved instead of NaN α.

Equivalent reorganisations (same candidates): the closed-form mix is built as z + α⊙Δ
(no cancellation for huge α_j); a fresh Adam's single step is taken in closed form and
the learned loop's final, never-checked step is skipped; with ``clustering`` or
``uniform`` a point already found is not mixed again at later caps (only the OR over
caps is used).

The clustering step follows the official scikit-learn ``KMeans``: greedy k-means++
seeding (the same law), then Lloyd, the candidate nearest each centre; with at most 8
seeding candidates per centre instead of 2 + ⌊ln k⌋ (the same up to k = 1,096; for
time), Lloyd capped at ``kmeans_iters`` and one restart. Its diversity (SSE of the
candidates to their nearest pick, relative to a uniform pick) is 0.97–1.0× scikit-learn's
on the data measured; see `alharness.ops.kmeans`.

The ``norm`` ablation records, per candidate, the true smallest ‖α‖ over the mixes that
flipped its prediction. The official ``find_candidate_set`` starts each point's α at the
all-ones vector (‖·‖ = √d) and keeps a flipping α only if its norm is strictly smaller, so
a point whose flipping mixes all have ‖α‖ ≥ √d records √d there. Only the order of such
points in the ``norm`` ablation differs (they tie at √d officially); the candidate set and
the other selections are unaffected.

Single-label only: the anchors, the pseudo-label and the "prediction changed" test are
defined for a softmax classifier, and the paper gives no multi-label form, so a
multi-label dataset is a clear error rather than a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from alharness.errors import ConfigError, SelectionError
from alharness.ops.kmeans import INITS, kmeans_nearest
from alharness.ops.topk import top_k
from alharness.strategies.base import SelectionContext, Strategy, register_strategy

#: Ablations of the candidate-selection step (paper Sec. 4, ablation study).
CANDIDATE_SELECTIONS = ("clustering", "norm", "symmetric_kl", "uniform")


def alpha_caps(step: float) -> list[float]:
    """The caps swept by the outer loop: step, 2·step, … while the previous cap is below 1.

    The official ``while cap < 1: cap += step`` gives five passes 0.2 … 1.0 for the paper's
    step 0.2, and a last cap above 1 when the step does not divide 1 (0.3 → … 0.9, 1.2);
    we keep that, computing k·step instead of a running sum so that float rounding cannot
    add a pass (a running sum of ten 0.1s stays below 1).
    """
    return [step * (i + 1) for i in range(math.ceil(1.0 / step - 1e-9))]


def class_anchors(z_l: torch.Tensor, y_l: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, d) anchors: the mean labelled embedding of each true class (Sec. 3.1).

    A class without labelled points gets the mean of all labelled embeddings, as in the
    official code.
    """
    sums = torch.zeros(num_classes, z_l.shape[1], dtype=z_l.dtype, device=z_l.device)
    sums.index_add_(0, y_l, z_l)
    counts = torch.bincount(y_l, minlength=num_classes)
    anchors = sums / counts.clamp_min(1).unsqueeze(1).to(z_l.dtype)
    anchors[counts == 0] = z_l.mean(dim=0)
    return anchors


def unit_rows(g: torch.Tensor) -> torch.Tensor:
    """g / ‖g‖ along the last axis; an all-zero row stays 0 (a saturated softmax has no
    gradient direction; the official code gives NaN there).

    Rows whose norm is below tiny^¼ of the dtype (squares near underflow) are first scaled
    by their largest entry, so even denormal gradients keep their direction exactly.
    """
    norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
    small = norm.squeeze(-1) < torch.finfo(g.dtype).tiny ** 0.25
    unit = g / norm.clamp_min(torch.finfo(g.dtype).tiny)
    if bool(small.any()):
        rows = g[small]
        biggest = rows.abs().amax(dim=-1, keepdim=True)
        rows = rows / torch.where(biggest > 0, biggest, torch.ones_like(biggest))
        unit[small] = rows / torch.linalg.vector_norm(rows, dim=-1, keepdim=True).clamp_min(1.0)
    return unit


def closed_form_alpha(z: torch.Tensor, anchor: torch.Tensor, grad: torch.Tensor,
                      eps: float) -> torch.Tensor:
    """α = ε·‖Δ‖·g / (‖g‖·(Δ + 1e-8)) elementwise, Δ = anchor − z (Sec. 3.2, closed form).

    The first-order answer to "which mix, with ‖α‖ bounded, most increases the loss at the
    pseudo-label"; ``g`` is d CE(head(z), ŷ) / d z. Shapes broadcast over leading axes.
    The reference form of what `closed_form_mix` evaluates in bulk.
    """
    delta = anchor - z
    return eps * torch.linalg.vector_norm(delta, dim=-1, keepdim=True) * unit_rows(grad) / (
        delta + 1e-8)


def closed_form_mix(z: torch.Tensor, anchors: torch.Tensor, unit: torch.Tensor, eps: float,
                    with_norm: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, C, d) mixes (1 − α)·z + α·z* of B points with C anchors for the closed-form α,
    and, if asked, ‖α‖ (B, C).

    Built as z + α⊙Δ with α⊙Δ = ε‖Δ‖·ĝ ⊙ Δ/(Δ + 1e-8) (ĝ = ``unit``, the unit gradient):
    the same numbers as the official (1 − α)·z + α·z* up to rounding, without its
    cancellation where α_j is huge (|Δ_j| tiny). The guard's factor is kept: a coordinate
    where the point equals the anchor (e.g. a dead ReLU unit, 0 in both) does not move.
    Memory: two (B, C, d) buffers, reused in place.
    """
    delta = anchors.unsqueeze(0) - z.unsqueeze(1)
    step = eps * torch.linalg.vector_norm(delta, dim=-1, keepdim=True)  # ε‖Δ‖, (B, C, 1)
    den = delta + 1e-8
    norm = None
    if with_norm:  # ‖α‖ = ε‖Δ‖·‖ĝ / (Δ + 1e-8)‖
        norm = step.squeeze(-1) * torch.linalg.vector_norm(unit.unsqueeze(1) / den, dim=-1)
    delta.div_(den).mul_(unit.unsqueeze(1))
    del den
    return delta.mul_(step).add_(z.unsqueeze(1)), norm


def _head(head: Any, mix: torch.Tensor) -> torch.Tensor:
    """``head`` on (B, C, d) mixes: (B, C, classes) logits; heads take (N, d) batches."""
    return head(mix.flatten(0, 1)).unflatten(0, mix.shape[:2])


def _symmetric_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) + KL(q‖p) over the last axis, from log-probabilities."""
    return ((logp.exp() - logq.exp()) * (logp - logq)).sum(dim=-1)


@dataclass
class CandidateScan:
    """The α sweep over the unlabelled pool; arrays are aligned with ``ctx.unlabelled``."""

    candidate: np.ndarray  # bool: some anchor at some swept cap changed the prediction
    min_alpha_norm: np.ndarray  # smallest ‖α‖ of a mix that changed it; +inf elsewhere,
    #                             and everywhere unless candidate_selection == "norm"
    max_symmetric_kl: np.ndarray  # largest KL(p‖q)+KL(q‖p) of such a mix; 0 elsewhere,
    #                               and everywhere unless candidate_selection == "symmetric_kl"
    caps: list[float]  # the caps actually swept (the sweep stops early, Sec. 3.3)
    embeddings: np.ndarray  # the unlabelled embeddings the sweep ran on


@dataclass
class _BlockStats:
    """Running candidate statistics of one block of points, on the model's device."""

    candidate: torch.Tensor
    min_norm: torch.Tensor
    max_kl: torch.Tensor

    def update(self, logits: torch.Tensor, y_hat: torch.Tensor, logp: torch.Tensor | None,
               alpha_norm: torch.Tensor | None) -> None:
        """Record the mixes (points × anchors) whose prediction differs from ŷ; the KL
        and the α norm only where given (their selection variant is the only consumer)."""
        changed = logits.argmax(dim=-1) != y_hat.unsqueeze(1)
        self.candidate |= changed.any(dim=1)
        if logp is not None:
            kl = _symmetric_kl(logp.unsqueeze(1), F.log_softmax(logits, dim=-1))
            self.max_kl = torch.maximum(self.max_kl, kl.masked_fill(~changed, 0.0).amax(dim=1))
        if alpha_norm is not None:
            self.min_norm = torch.minimum(
                self.min_norm, alpha_norm.masked_fill(~changed, math.inf).amin(dim=1))


@register_strategy("alfa_mix")
class AlfaMix(Strategy):
    """Candidates whose prediction flips under feature mixing, then k-means for diversity.

    Parameters (defaults and paper sections in ``configs/strategy/alfa_mix.yaml``):
    ``alpha_cap`` step of the cap sweep; ``alpha_opt`` learn α by gradient steps instead
    of the closed form; ``alpha_learning_rate``, ``alpha_learning_iters``,
    ``alpha_clf_coef``, ``alpha_l2_coef`` that optimisation; ``candidate_selection`` one
    of `CANDIDATE_SELECTIONS`; ``kmeans_init``, ``kmeans_max_local_trials``, ``kmeans_iters``,
    ``kmeans_max_points_per_centroid`` the diversity step (`alharness.ops.kmeans`);
    ``chunk_size`` (point, anchor) mixes evaluated at once (memory).

    ``needs`` has no ``probs``: the pseudo-label ŷ is the argmax of ``head(z)`` recomputed
    in float32, the same quantity the official code uses, but consistent with the mixes
    even when the runner computed probabilities under mixed precision.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"embeddings", "model"})

    def __init__(self, alpha_cap: float = 0.2, alpha_opt: bool = False,
                 alpha_learning_rate: float = 0.1, alpha_learning_iters: int = 5,
                 alpha_clf_coef: float = 1.0, alpha_l2_coef: float = 0.01,
                 candidate_selection: str = "clustering", kmeans_init: str = "kmeanspp",
                 kmeans_max_local_trials: int | None = 8,
                 kmeans_iters: int = 20,
                 kmeans_max_points_per_centroid: int = 256, chunk_size: int = 4096) -> None:
        if not alpha_cap > 0:
            raise ConfigError(f"strategy.alpha_cap must be > 0 (paper: 0.2), got {alpha_cap}")
        if candidate_selection not in CANDIDATE_SELECTIONS:
            raise ConfigError(f"strategy.candidate_selection={candidate_selection!r}; use one "
                              f"of {', '.join(CANDIDATE_SELECTIONS)}")
        if kmeans_init not in INITS:
            raise ConfigError(f"strategy.kmeans_init={kmeans_init!r}; use one of "
                              f"{', '.join(INITS)} (kmeanspp is the official code's)")
        if kmeans_max_local_trials is not None and not (
                isinstance(kmeans_max_local_trials, int) and kmeans_max_local_trials >= 1):
            raise ConfigError(f"strategy.kmeans_max_local_trials must be ≥ 1 or null (2 + ln k, "
                              f"scikit-learn's), got {kmeans_max_local_trials}")
        for key, value in (("alpha_learning_iters", alpha_learning_iters),
                           ("kmeans_iters", kmeans_iters), ("chunk_size", chunk_size),
                           ("kmeans_max_points_per_centroid", kmeans_max_points_per_centroid)):
            if int(value) < 1:
                raise ConfigError(f"strategy.{key} must be ≥ 1, got {value}")
        self.alpha_cap = float(alpha_cap)
        self.alpha_opt = bool(alpha_opt)
        self.alpha_learning_rate = float(alpha_learning_rate)
        self.alpha_learning_iters = int(alpha_learning_iters)
        self.alpha_clf_coef = float(alpha_clf_coef)
        self.alpha_l2_coef = float(alpha_l2_coef)
        self.candidate_selection = candidate_selection
        self.kmeans_init = kmeans_init
        self.kmeans_max_local_trials = kmeans_max_local_trials
        self.kmeans_iters = int(kmeans_iters)
        self.kmeans_max_points_per_centroid = int(kmeans_max_points_per_centroid)
        self.chunk_size = int(chunk_size)

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        n = len(ctx.unlabelled)
        if budget >= n:
            return ctx.unlabelled.copy()
        scan = self.candidates(ctx, budget)
        picked = self._choose(scan, ctx, budget)
        rest = np.ones(n, dtype=bool)
        rest[picked] = False
        fill = ctx.rng.choice(np.flatnonzero(rest), size=budget - len(picked), replace=False)
        ctx.record("alfa_candidates", int(scan.candidate.sum()))
        ctx.record("alfa_alpha_cap", scan.caps[-1])
        ctx.record("alfa_random_fill", len(fill))
        return ctx.unlabelled[np.concatenate([picked, fill])]

    def candidates(self, ctx: SelectionContext, budget: int) -> CandidateScan:
        """Sweep the caps (Sec. 3.2), OR-ing flips over anchors and caps, until more than
        ``budget`` points are candidates or the caps run out."""
        device = torch.device(ctx.device)
        anchors = self._anchors(ctx, device)
        embeddings = np.ascontiguousarray(ctx.embeddings("unlabelled"), np.float32)
        n = len(embeddings)
        candidate = np.zeros(n, dtype=bool)
        min_norm = np.full(n, np.inf, dtype=np.float32)
        max_kl = np.zeros(n, dtype=np.float32)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(ctx.rng.integers(2**62)))
        block = max(1, self.chunk_size // len(anchors))
        # Found candidates can skip later caps when only the OR over caps is used; `norm`
        # and `symmetric_kl` need every flipping mix (a later cap may flip another anchor
        # with a smaller α or a larger KL), as the official sweep keeps the minimum α.
        skip_found = self.candidate_selection in ("clustering", "uniform")
        swept: list[float] = []
        for cap in alpha_caps(self.alpha_cap):
            swept.append(cap)
            todo = np.flatnonzero(~candidate) if skip_found else np.arange(n)
            for start in range(0, len(todo), block):
                rows = todo[start:start + block]
                stats = _BlockStats(torch.from_numpy(candidate[rows]).to(device),
                                    torch.from_numpy(min_norm[rows]).to(device),
                                    torch.from_numpy(max_kl[rows]).to(device))
                z = torch.from_numpy(embeddings[rows]).to(device)
                self._mix_block(ctx.model.head, z, anchors, cap, gen, stats)
                candidate[rows] = stats.candidate.cpu().numpy()
                min_norm[rows] = stats.min_norm.cpu().numpy()
                max_kl[rows] = stats.max_kl.cpu().numpy()
            if candidate.sum() > budget:
                break
        return CandidateScan(candidate, min_norm, max_kl, swept, embeddings)

    def _anchors(self, ctx: SelectionContext, device: torch.device) -> torch.Tensor:
        if ctx.task == "multilabel":
            raise SelectionError("alfa_mix is defined for single-label classifiers (its class "
                                 "anchors and prediction flips need one label per point); use "
                                 "another strategy, e.g. strategy=margin, on multi-label data")
        if ctx.labelled_targets is None or len(ctx.labelled) == 0:
            raise SelectionError("alfa_mix needs the labelled points and their true labels "
                                 "(SelectionContext.labelled_targets) to build class anchors")
        y_l = np.asarray(ctx.labelled_targets)
        if y_l.ndim != 1:
            raise SelectionError(f"alfa_mix needs integer class labels, got targets of shape "
                                 f"{y_l.shape}; multi-label data is not supported")
        num_classes = max(int(ctx.num_classes), int(y_l.max()) + 1)
        z_l = torch.from_numpy(np.ascontiguousarray(ctx.embeddings("labelled"), np.float32))
        return class_anchors(z_l.to(device), torch.from_numpy(y_l.astype(np.int64)).to(device),
                             num_classes)

    def _mix_block(self, head: Any, z: torch.Tensor, anchors: torch.Tensor, cap: float,
                   gen: torch.Generator, stats: _BlockStats) -> None:
        """Mix a block of points (B, d) with every anchor (C, d) at one cap: B·C mixes.

        ŷ and g are recomputed per block and cap (one head pass over B·d, about 1/C of the
        mixing work) rather than stored for the pool, so memory stays O(chunk·d).
        """
        with torch.enable_grad():
            z_var = z.detach().requires_grad_(not self.alpha_opt)
            logits = head(z_var)
            y_hat = logits.argmax(dim=1)
            if not self.alpha_opt:  # g = d CE(head(z), ŷ) / d z, one row per point
                # Summed, not the official mean: the same direction, without the 1/pool
                # factor that pushes confident points' gradients towards underflow.
                loss = F.cross_entropy(logits, y_hat, reduction="sum")
                grad = torch.autograd.grad(loss, z_var)[0]
        logp = (F.log_softmax(logits.detach(), dim=1)
                if self.candidate_selection == "symmetric_kl" else None)
        if self.alpha_opt:
            self._learn_alpha(head, z, anchors, y_hat, logp, cap, gen, stats)
            return
        with torch.no_grad():
            eps = cap / math.sqrt(z.shape[1])  # the official code scales by 1/√d here only
            mix, norm = closed_form_mix(z, anchors, unit_rows(grad), eps,
                                        with_norm=self.candidate_selection == "norm")
            stats.update(_head(head, mix), y_hat, logp, norm)

    def _learn_alpha(self, head: Any, z: torch.Tensor, anchors: torch.Tensor,
                     y_hat: torch.Tensor, logp: torch.Tensor | None, cap: float,
                     gen: torch.Generator, stats: _BlockStats) -> None:
        """Learned α (Sec. 3.2; official ``learn_alpha``), one α per (point, anchor, dim).

        α ~ N(c/2, c/2) clamped to [1e-8, c]; each iteration checks the mix for a flip, then
        takes one step of a *fresh* Adam on −clf_coef·CE(head(mix), ŷ) + l2_coef·‖α‖₂ and
        clamps again. A fresh Adam's first step is exactly lr·∇/(|∇| + 1e-8) (its moments
        are ∇ and ∇² after bias correction; eps 1e-8), so we take that step directly
        instead of building an optimiser with two state tensors per block. Learning rate
        ÷10 from iteration 2/3·iters on, as in the official code. The step after the last
        check is skipped: the official code takes it but never evaluates its result (so,
        with the default 5 iterations, its 0.01 learning rate has no effect).
        """
        delta = anchors.unsqueeze(0) - z.unsqueeze(1)  # (B, C, d): z* − z
        alpha = torch.randn(delta.shape, generator=gen, device=z.device, dtype=z.dtype)
        alpha.mul_(cap / 2.0).add_(cap / 2.0).clamp_(1e-8, cap)
        targets = y_hat.repeat_interleave(delta.shape[1])  # row-major (point, anchor) pairs
        want_norm = self.candidate_selection == "norm"
        mix, scratch = torch.empty_like(delta), torch.empty_like(delta)  # reused every step
        for i in range(self.alpha_learning_iters):
            torch.addcmul(z.unsqueeze(1), alpha, delta, out=mix)  # (1 − α)·z + α·z*
            if i == self.alpha_learning_iters - 1:  # last check, no step after it
                with torch.no_grad():
                    norm = torch.linalg.vector_norm(alpha, dim=-1) if want_norm else None
                    stats.update(_head(head, mix), y_hat, logp, norm)
                return
            with torch.enable_grad():
                leaf = mix.detach().requires_grad_(True)
                logits = _head(head, leaf)
                ce = F.cross_entropy(logits.flatten(0, 1), targets, reduction="sum")
                d_mix = torch.autograd.grad(ce, leaf)[0]
            with torch.no_grad():
                norm = torch.linalg.vector_norm(alpha, dim=-1, keepdim=True)
                stats.update(logits.detach(), y_hat, logp, norm.squeeze(-1) if want_norm else None)
                # ∇α = l2·α/‖α‖ − clf·Δ ⊙ dCE/dmix
                grad = d_mix.mul_(delta).mul_(-self.alpha_clf_coef)
                grad.addcdiv_(alpha, norm, value=self.alpha_l2_coef)
                lr = self.alpha_learning_rate / (
                    1.0 if i < self.alpha_learning_iters * 2 / 3 else 10.0)
                denom = torch.abs(grad, out=scratch).add_(1e-8)
                alpha.addcdiv_(grad, denom, value=-lr).clamp_(1e-8, cap)
                del leaf, logits, d_mix, grad

    def _choose(self, scan: CandidateScan, ctx: SelectionContext, budget: int) -> np.ndarray:
        """Positions (into ``ctx.unlabelled``) of at most ``budget`` candidates (Sec. 3.3)."""
        pool = np.flatnonzero(scan.candidate)
        if len(pool) <= budget:
            return pool  # what k-means with k = #candidates would return: every candidate
        if self.candidate_selection == "uniform":
            return ctx.rng.choice(pool, size=budget, replace=False)
        if self.candidate_selection == "norm":
            return pool[top_k(scan.min_alpha_norm[pool], budget, ctx.rng, largest=False)]
        if self.candidate_selection == "symmetric_kl":
            return pool[top_k(scan.max_symmetric_kl[pool], budget, ctx.rng, largest=True)]
        feats = scan.embeddings[pool]
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        return pool[kmeans_nearest(feats, budget, ctx.rng, self.kmeans_iters,
                                   self.kmeans_max_points_per_centroid, init=self.kmeans_init,
                                   max_trials=self.kmeans_max_local_trials)]
