"""Which rows are exactly the same vector: equality decided exactly, in O(n·d) time.

Float32 distances cannot tell an exact copy from a very near neighbour: in
‖x‖² + ‖c‖² − 2x·c the rounding is ≈ ε·‖x‖², so copies of embeddings with ‖x‖² ≈ 2,000
come out 0.016–0.031 apart instead of 0. Greedy k-center needs "every remaining point
is a copy of a centre" decided exactly (`alharness.ops.kcenter`), and equality needs no
arithmetic: rows are hashed from their bit patterns (−0.0 counted as 0.0), rows with
equal hashes are compared element by element, and a hash collision between unequal rows
(probability ≈ n²/2⁶⁴) falls back to an exact sort of the rows.
"""

from __future__ import annotations

import numba
import numpy as np

#: The bit pattern of float32 −0.0, hashed as 0.0.
_NEGATIVE_ZERO = np.uint32(0x80000000)


def equal_row_groups(*arrays: np.ndarray) -> list[np.ndarray]:
    """Group ids (int64, one array per input) in one id space shared by all the inputs:
    two rows, in the same or in different arrays, share an id exactly when they are equal
    element by element. All arrays are 2-D float32-convertible with the same width."""
    rows = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
    keys = np.concatenate([_row_keys(r) for r in rows])
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    run = np.cumsum(starts) - 1
    group = np.empty(len(keys), dtype=np.int64)
    group[order] = run
    repeats = np.flatnonzero(~starts)
    if len(repeats):
        first = order[np.flatnonzero(starts)][run[repeats]]
        if (_take(rows, order[repeats]) != _take(rows, first)).any():  # a hash collision
            group = _exact_groups(rows)
    bounds = np.cumsum([0] + [len(r) for r in rows])
    return [group[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """64-bit hash per row: Σ_j bits(x_j)·m_j mod 2⁶⁴ with fixed odd random multipliers."""
    multipliers = np.random.default_rng(0).integers(
        0, 2**64, size=rows.shape[1], dtype=np.uint64, endpoint=False) | np.uint64(1)
    return _hash_bits(rows.view(np.uint32), multipliers)


@numba.njit(cache=True)
def _hash_bits(bits: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    keys = np.empty(len(bits), dtype=np.uint64)
    for i in range(len(bits)):
        key = np.uint64(0)
        for j in range(bits.shape[1]):
            b = bits[i, j]
            if b == _NEGATIVE_ZERO:
                b = np.uint32(0)
            key += np.uint64(b) * multipliers[j]
        keys[i] = key
    return keys


def _take(rows: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of the inputs stacked one after another (without stacking them)."""
    out = np.empty((len(idx), rows[0].shape[1]), dtype=np.float32)
    offset = 0
    for part in rows:
        inside = (idx >= offset) & (idx < offset + len(part))
        out[inside] = part[idx[inside] - offset]
        offset += len(part)
    return out


def _exact_groups(rows: list[np.ndarray]) -> np.ndarray:
    stacked = np.ascontiguousarray(np.concatenate(rows) + np.float32(0.0))
    as_bytes = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
    return np.unique(as_bytes.ravel(), return_inverse=True)[1].astype(np.int64).ravel()
