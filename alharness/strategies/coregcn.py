"""CoreGCN (Caramalau, Bhattarai & Kim, "Sequential GCN for Active Learning", CVPR 2021,
arXiv 2006.10219), the "GCNAL" baseline of ALFA-Mix's comparison.

A graph of the labelled points and a random subset of unlabelled points is built from
their penultimate embeddings; a 2-layer GCN learns to tell labelled nodes from unlabelled
ones (Sec. 3.3, binary cross-entropy with the unlabelled term weighted by λ, Eq. 5), and
greedy k-center on the GCN's node features, labelled nodes as the initial centres, picks
the batch (Sec. 3.4, "CoreGCN"). Hyperparameters are the official code's
(``razvancaramalau/Sequential-GCN-for-Active-Learning``: ``main.py`` flags ``--hidden_units
128 --dropout_rate 0.3 --lambda_loss 1.2``; ``config.py`` ``LR_GCN = 1e-3``, ``WDECAY = 5e-4``,
``SUBSET = 10000``; ``selection_methods.py`` trains ``for _ in range(200)`` full-graph Adam
steps), which ALFA-Mix's port (``query_strategies/gcn_sampling.py``) hard-codes unchanged.

Graph (Sec. 3.2, Eq. 2, as the official ``aff_to_adj``): with X the L2-normalised
embeddings (the GCN's input too), S = XXᵀ − I (cosine similarities, no self-loops),
D = diag of S's column sums, Â = S D⁻¹ + I (each column of S divided by its sum, then the
self-loops added back). The code's comment calls the sums "rowise"; S is symmetric, so
row and column sums agree, and the column scaling is what it computes. One guard differs:
a sum below 1 (a node nearly orthogonal to, or opposite, all the others; negative sums
need embeddings with negative entries) is replaced by 1 instead of dividing by a tiny or
negative number.

Memory: Â is never built. Â V = X (Xᵀ (D⁻¹V)) − D⁻¹V + V costs O(N·d) per column of V,
so memory is linear in the node count N = subset + labelled; the official dense Â takes
4·N² bytes (0.5 GB at N = 11,000, 40 GB at N = 100,000). ``subset`` therefore bounds the
training time (O(epochs·N·d·hidden)), not the memory; ``subset: null`` puts every
unlabelled point in the graph.

The k-center features are the concatenation of the first layer's activations and the
second layer's output, as in ALFA-Mix's port (the GCN's third output). One revision of
the official ``selection_methods.py`` passes the backbone embeddings instead, which
leaves the trained GCN unused; that is not followed.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alharness.bounds import Count, Dropout, NonNegativeNumber, Positive, Size
from alharness.ops.kcenter import kcenter_greedy
from alharness.strategies.base import SelectionContext, Strategy, register_strategy
from alharness.strategies.subset import unlabelled_subset


class Affinity:
    """The normalised affinity Â of CoreGCN's graph over nodes with embeddings ``z``, applied
    in factorised form (see the module docstring)."""

    def __init__(self, z: torch.Tensor) -> None:
        self.x = F.normalize(z.float(), dim=1)
        degree = self.x @ self.x.sum(dim=0) - 1.0  # column sums of XXᵀ − I
        self.inv_degree = 1.0 / degree.clamp_min(1.0)

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        scaled = v * self.inv_degree[:, None]
        return self.x @ (self.x.T @ scaled) - scaled + v


class GCN(nn.Module):
    """Two graph convolutions (Kipf & Welling 2017): h = ReLU(Â X W₁ + b₁), dropout,
    logit = Â h W₂ + b₂; the node is "labelled" with probability σ(logit)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, generator: torch.Generator) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(in_dim, hidden))
        self.b1 = nn.Parameter(torch.empty(hidden))
        self.w2 = nn.Parameter(torch.empty(hidden, 1))
        self.b2 = nn.Parameter(torch.empty(1))
        self.dropout = dropout
        for p in self.parameters():  # pygcn's init, as in the official code
            bound = 1.0 / math.sqrt(p.shape[-1])
            p.data.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)

    def forward(self, ax: torch.Tensor, adj: Affinity,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``ax`` = Â X (precomputed: Â is fixed, so Â(XW₁) = (ÂX)W₁). Returns (logits,
        node features [h, logit]); dropout is sampled from ``generator`` when training."""
        h = torch.relu(ax @ self.w1 + self.b1)
        if self.training and self.dropout > 0:
            keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.dropout
            h = h * keep / (1.0 - self.dropout)
        logit = adj @ (h @ self.w2) + self.b2
        return logit[:, 0], torch.cat([h, logit], dim=1)


def labelled_vs_unlabelled_loss(logits: torch.Tensor, is_labelled: torch.Tensor,
                                unlabelled_weight: float) -> torch.Tensor:
    """Eq. 5: −mean log σ(s) over labelled nodes − λ·mean log(1 − σ(s)) over unlabelled."""
    loss = -unlabelled_weight * F.logsigmoid(-logits[~is_labelled]).mean()
    if is_labelled.any():
        loss = loss - F.logsigmoid(logits[is_labelled]).mean()
    return loss


def train_gcn(z: torch.Tensor, is_labelled: torch.Tensor, hidden: int = 128,
              dropout: float = 0.3, unlabelled_weight: float = 1.2, epochs: int = 200,
              lr: float = 1e-3, weight_decay: float = 5e-4,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit CoreGCN's GCN on node embeddings ``z`` (full-graph Adam steps); return the eval-mode
    probabilities of being labelled and the node features for k-center."""
    adj = Affinity(z)
    ax = adj @ adj.x
    generator = torch.Generator().manual_seed(seed)
    gcn = GCN(z.shape[1], hidden, dropout, generator).to(z.device)
    dropout_rng = torch.Generator(device=z.device).manual_seed(seed)
    optimiser = torch.optim.Adam(gcn.parameters(), lr=lr, weight_decay=weight_decay)
    gcn.train()
    for _ in range(epochs):
        optimiser.zero_grad(set_to_none=True)
        logits, _ = gcn(ax, adj, dropout_rng)
        labelled_vs_unlabelled_loss(logits, is_labelled, unlabelled_weight).backward()
        optimiser.step()
    gcn.eval()
    with torch.no_grad():
        logits, features = gcn(ax, adj)
    return torch.sigmoid(logits), features


@register_strategy("coregcn")
class CoreGCN(Strategy):
    """Greedy k-center on GCN node features (labelled nodes as centres), picking from a
    random subset of the unlabelled pool.

    Records ``coregcn_separation`` (the share of nodes the GCN puts on the right side of
    0.5, labelled vs unlabelled; the official code prints it) and ``cover_radius``.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def __init__(self, subset: Size = 10_000, hidden: Count = 128, dropout: Dropout = 0.3,
                 unlabelled_weight: NonNegativeNumber = 1.2, epochs: Count = 200,
                 lr: Positive = 1e-3, weight_decay: NonNegativeNumber = 5e-4) -> None:
        self.subset = subset
        self.hidden = int(hidden)
        self.dropout = float(dropout)
        self.unlabelled_weight = float(unlabelled_weight)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def select(self, ctx: SelectionContext, budget: int) -> np.ndarray:
        candidates = unlabelled_subset(ctx, self.subset, budget)
        z = np.concatenate([ctx.embeddings("unlabelled")[candidates], ctx.embeddings("labelled")])
        device = torch.device(ctx.device)
        is_labelled = torch.zeros(len(z), dtype=torch.bool, device=device)
        is_labelled[len(candidates):] = True
        probs, features = train_gcn(
            torch.as_tensor(z, dtype=torch.float32, device=device), is_labelled, self.hidden,
            self.dropout, self.unlabelled_weight, self.epochs, self.lr, self.weight_decay,
            seed=int(ctx.rng.integers(2**62)))
        ctx.record("coregcn_separation", float(((probs > 0.5) == is_labelled).float().mean()))
        features = features.cpu().numpy()
        result = kcenter_greedy(features[: len(candidates)], budget,
                                centres=features[len(candidates):], rng=ctx.rng)
        ctx.record("cover_radius", result.radius)
        return ctx.unlabelled[candidates[result.picks]]
