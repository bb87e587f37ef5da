"""Seeded embedding-like point clouds: continuous, varying density, for judging clusterers.

Separated Gaussian blobs flatter every approximate clustering (any method recovers them).
Real embeddings look different: classes split into overlapping modes of very different
weight and spread, each mode stretched along a few directions, with a heavy tail of
atypical points between them. `embedding_mixture` draws such a cloud — a two-level
mixture (classes → components) of anisotropic, heavy-tailed (Student-t) components —
so that agreement numbers measured on it carry over to real embeddings. Memory is the
output array plus O(components · rank · dim); rows are generated in chunks.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 16


def embedding_mixture(n: int, dim: int = 64, seed: int = 0, classes: int = 10,
                      components: int | None = None, rank: tuple[int, int] = (2, 12),
                      tail_dof: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 points in ``dim`` dimensions and the component each was drawn from.

    ``classes`` class centres ~ N(0, 8²/dim·I) (≈ 11 apart at any dim); each of
    ``components`` (default 8 per class, more for large n) sits N(0, 4²/dim·I) around its
    class centre (≈ 6 apart), so components overlap within a class and classes touch. Component weights are Dirichlet(0.7) (a few dominate, some
    are rare); a component spreads along ``rank`` (uniform in the range) random directions
    with singular values decaying like 1/√j and an overall scale log-uniform in [0.35, 1.4],
    plus isotropic noise of 0.15 of that scale in every dimension; each point's deviation is
    Student-t scaled (``tail_dof`` degrees of freedom: a heavy-ish tail).
    """
    rng = np.random.default_rng(seed)
    g = components or max(8 * classes, min(400, n // 2000))
    klass = rng.integers(0, classes, g)
    centres = (rng.normal(scale=8.0, size=(classes, dim))[klass]
               + rng.normal(scale=4.0, size=(g, dim))) / np.sqrt(dim)
    weights = rng.dirichlet(np.full(g, 0.7))
    scales = np.exp(rng.uniform(np.log(0.35), np.log(1.4), g))
    ranks = np.minimum(rng.integers(rank[0], rank[1] + 1, g), dim)
    bases = []
    for r, s in zip(ranks, scales, strict=True):
        q, _ = np.linalg.qr(rng.normal(size=(dim, r)))
        bases.append((q * (s * 3.0 / np.sqrt(np.arange(1, r + 1)))).T.astype(np.float32))
    label = rng.choice(g, size=n, p=weights).astype(np.int32)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        comp = label[start:start + _CHUNK]
        m = len(comp)
        tail = np.sqrt(tail_dof / rng.chisquare(tail_dof, m)).astype(np.float32)[:, None]
        out = rng.standard_normal((m, dim), dtype=np.float32) * (0.15 * scales[comp, None]
                                                                  ).astype(np.float32)
        for c in np.unique(comp):
            rows = np.flatnonzero(comp == c)
            z = rng.standard_normal((len(rows), ranks[c]), dtype=np.float32)
            out[rows] += z @ bases[c]
        x[start:start + m] = centres[comp].astype(np.float32) + tail * out
    return x, label
