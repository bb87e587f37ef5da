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
  so a batch could repeat an index).

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
from alharness.ops.kmeans import kmeans, nearest_to_centres
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
    """g / ‖g‖ along the last axis, exact even for denormal rows; an all-zero row stays 0
    (a saturated softmax has no gradient direction; the official code gives NaN there)."""
    biggest = g.abs().amax(dim=-1, keepdim=True)
    g = g / torch.where(biggest > 0, biggest, torch.ones_like(biggest))
    return g / g.norm(dim=-1, keepdim=True).clamp_min(1.0)  # ‖g‖ ≥ 1 once max|g_j| = 1


def closed_form_alpha(z: torch.Tensor, anchor: torch.Tensor, grad: torch.Tensor,
                      eps: float) -> torch.Tensor:
    """α = ε·‖Δ‖·g / (‖g‖·(Δ + 1e-8)) elementwise, Δ = anchor − z (Sec. 3.2, closed form).

    The first-order answer to "which mix, with ‖α‖ bounded, most increases the loss at the
    pseudo-label"; ``g`` is d CE(head(z), ŷ) / d z. Shapes broadcast over leading axes.
    """
    delta = anchor - z
    return eps * delta.norm(dim=-1, keepdim=True) * unit_rows(grad) / (delta + 1e-8)


def closed_form_mix(z: torch.Tensor, anchors: torch.Tensor, unit: torch.Tensor,
                    eps: float) -> torch.Tensor:
    """(B, C, d) mixes (1 − α)·z + α·z* of B points with C anchors, closed-form α.

    Since α⊙Δ = ε‖Δ‖·ĝ ⊙ Δ/(Δ + 1e-8), the mix is z + ε‖Δ‖·ĝ: a step of ε‖Δ‖ along the
    unit gradient ``unit``. We build it that way, dropping the 1e-8 guard's factor (1 to
    float32 precision unless a coordinate of z is within ~1e-7 of the anchor's): one pass
    over B·C·d instead of the five that α itself costs, and no cancellation where α_j is
    huge (the official (1 − α)·z + α·z* loses every digit there).
    """
    step = eps * torch.cdist(z, anchors)  # (B, C): ε‖z* − z‖
    return torch.addcmul(z.unsqueeze(1), step.unsqueeze(2), unit.unsqueeze(1))


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
    of `CANDIDATE_SELECTIONS`; ``kmeans_iters``, ``kmeans_max_points_per_centroid`` the
    diversity step; ``chunk_size`` (point, anchor) mixes evaluated at once (memory).

    ``needs`` has no ``probs``: the pseudo-label ŷ is the argmax of ``head(z)`` recomputed
    in float32, the same quantity the official code uses, but consistent with the mixes
    even when the runner computed probabilities under mixed precision.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"embeddings", "model"})

    def __init__(self, alpha_cap: float = 0.2, alpha_opt: bool = False,
                 alpha_learning_rate: float = 0.1, alpha_learning_iters: int = 5,
                 alpha_clf_coef: float = 1.0, alpha_l2_coef: float = 0.01,
                 candidate_selection: str = "clustering", kmeans_iters: int = 20,
                 kmeans_max_points_per_centroid: int = 256, chunk_size: int = 32768) -> None:
        if not alpha_cap > 0:
            raise ConfigError(f"strategy.alpha_cap must be > 0 (paper: 0.2), got {alpha_cap}")
        if candidate_selection not in CANDIDATE_SELECTIONS:
            raise ConfigError(f"strategy.candidate_selection={candidate_selection!r}; use one "
                              f"of {', '.join(CANDIDATE_SELECTIONS)}")
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
        swept: list[float] = []
        for cap in alpha_caps(self.alpha_cap):
            swept.append(cap)
            for start in range(0, n, block):
                rows = slice(start, start + block)
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
        """Mix a block of points (B, d) with every anchor (C, d) at one cap: B·C mixes."""
        with torch.enable_grad():
            z_var = z.detach().requires_grad_(not self.alpha_opt)
            logits = head(z_var)
            y_hat = logits.argmax(dim=1)
            if not self.alpha_opt:  # g = d CE(head(z), ŷ) / d z, one row per point
                loss = F.cross_entropy(logits, y_hat, reduction="sum")
                grad = torch.autograd.grad(loss, z_var)[0]
        logp = (F.log_softmax(logits.detach(), dim=1)
                if self.candidate_selection == "symmetric_kl" else None)
        if self.alpha_opt:
            self._learn_alpha(head, z, anchors, y_hat, logp, cap, gen, stats)
            return
        with torch.no_grad():
            eps = cap / math.sqrt(z.shape[1])  # the official code scales by 1/√d here only
            unit = unit_rows(grad)
            norm = None
            if self.candidate_selection == "norm":
                alpha = closed_form_alpha(z.unsqueeze(1), anchors.unsqueeze(0),
                                          unit.unsqueeze(1), eps)
                norm = alpha.norm(dim=-1)
            mix = closed_form_mix(z, anchors, unit, eps)
            stats.update(_head(head, mix), y_hat, logp, norm)

    def _learn_alpha(self, head: Any, z: torch.Tensor, anchors: torch.Tensor,
                     y_hat: torch.Tensor, logp: torch.Tensor | None, cap: float,
                     gen: torch.Generator, stats: _BlockStats) -> None:
        """Learned α (Sec. 3.2; official ``learn_alpha``): per-dimension α ~ N(c/2, c/2)
        clamped to [1e-8, c]; each iteration checks for a flip, then takes one step of a
        fresh Adam (learning rate ÷10 from 2/3 of the iterations on) on
        −clf_coef·CE(head(mix), ŷ) + l2_coef·‖α‖₂, then clamps again. Every (point,
        anchor) pair has its own α; Adam is elementwise, so batching them changes nothing."""
        shape = (z.shape[0], anchors.shape[0], z.shape[1])
        z, anchors = z.unsqueeze(1), anchors.unsqueeze(0)  # broadcast to (B, C, d)
        alpha = torch.randn(shape, generator=gen, device=z.device, dtype=z.dtype)
        alpha = (alpha * (cap / 2.0) + cap / 2.0).clamp_(1e-8, cap)
        targets = y_hat.unsqueeze(1).expand(shape[:2])
        for i in range(self.alpha_learning_iters):
            lr = self.alpha_learning_rate / (1.0 if i < self.alpha_learning_iters * 2 / 3 else 10.0)
            alpha.requires_grad_(True)
            optimiser = torch.optim.Adam([alpha], lr=lr)
            with torch.enable_grad():
                logits = _head(head, (1 - alpha) * z + alpha * anchors)
                norm = alpha.norm(dim=-1)
                ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
                loss = self.alpha_l2_coef * norm.sum() - self.alpha_clf_coef * ce.sum()
                alpha.grad = torch.autograd.grad(loss, alpha)[0]
            with torch.no_grad():
                stats.update(logits, y_hat, logp,
                             norm if self.candidate_selection == "norm" else None)
            optimiser.step()
            alpha = alpha.detach().clamp_(1e-8, cap)

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
        centres = kmeans(feats, budget, ctx.rng, self.kmeans_iters,
                         self.kmeans_max_points_per_centroid)
        return pool[nearest_to_centres(feats, centres)]
