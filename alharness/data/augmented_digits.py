"""More digits than scikit-learn ships: random affine copies of its 1,797 images.

The benchmarks of the diversity steps (`scripts/bench_kmeans.py`, `scripts/bench_hac.py`)
and the HAC backend experiment need tens of thousands of *real* image-like points whose
embeddings have continuous, varying density (separated synthetic blobs flatter every
approximate clustering). Rotating, scaling and shifting real digits gives that without a
download: each copy stays a plausible digit of its source's class.
"""

from __future__ import annotations

import numpy as np


def augmented_digits(n: int, seed: int = 0, sources: np.ndarray | None = None,
                     max_degrees: float = 15.0, max_zoom: float = 0.1,
                     max_shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` flattened 8×8 images (float32 in [0, 1], shape (n, 64)) and their labels.

    Each copy is a random source image (drawn from ``sources``, indices into scikit-learn's
    digits, default all; pass disjoint index sets to keep a test set's sources out of the
    pool) rotated by up to ``max_degrees``, zoomed by 1 ± ``max_zoom`` and shifted by up to
    ``max_shift`` pixels, with bilinear interpolation about the image centre.
    """
    from scipy.ndimage import affine_transform
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(seed)
    pool = np.arange(len(bunch.target)) if sources is None else np.asarray(sources)
    source = pool[rng.integers(len(pool), size=n)]
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    zoom = rng.uniform(1 - max_zoom, 1 + max_zoom, n)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    centre = np.array([3.5, 3.5])
    out = np.empty((n, 64), dtype=np.float32)
    for i in range(n):  # scipy transforms one image per call; 20,000 take about a second
        c, s = np.cos(angle[i]) / zoom[i], np.sin(angle[i]) / zoom[i]
        matrix = np.array([[c, -s], [s, c]])
        offset = centre - matrix @ (centre + shift[i])
        out[i] = affine_transform(bunch.images[source[i]] / 16.0, matrix, offset,
                                  order=1).ravel()
    return out, bunch.target[source].astype(np.int64)
