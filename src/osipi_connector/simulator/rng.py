"""Counter-based hashing: random-looking numbers that are pure functions of their keys.

No generator state means any window, element or event can be produced on its own, in any order, and
always comes out the same. SplitMix64 finalisers, vectorised with NumPy (uint64 arithmetic wraps).
"""

from __future__ import annotations

from typing import overload

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / (1 << 53)


@overload
def _mix(x: np.ndarray) -> np.ndarray: ...
@overload
def _mix(x: np.unsignedinteger) -> np.unsignedinteger: ...
def _mix(x: np.ndarray | np.unsignedinteger) -> np.ndarray | np.unsignedinteger:
    x = x ^ (x >> _S30)  # a new array: the rest works in place (fewer temporaries on the hot path)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def hash_keys(*keys: int | np.ndarray) -> np.ndarray:
    """Hash integer keys (scalars or equal-shape arrays) into uint64 array(s).

    Leading scalar keys (seed, point) are mixed as scalars: only array keys cost a pass over arrays."""
    with np.errstate(over="ignore"):
        shape = np.broadcast(*[np.asarray(k) for k in keys]).shape
        h: np.ndarray | np.uint64 = np.uint64(0)
        for key in keys:
            k = np.asarray(key).astype(np.int64).view(np.uint64) if np.ndim(key) else np.uint64(key & (2**64 - 1))
            h = _mix(h + _GOLDEN + k)
        return h if isinstance(h, np.ndarray) and h.shape == shape else np.full(shape, h, dtype=np.uint64)


def extend(h: np.ndarray, key: np.ndarray) -> np.ndarray:
    """`hash_keys(*keys, key)` from `h = hash_keys(*keys)`: one more key mixed in (element-wise)."""
    with np.errstate(over="ignore"):
        return _mix(h + _GOLDEN + key.astype(np.int64).view(np.uint64))


def uniform(h: np.ndarray, salt: int = 0) -> np.ndarray:
    """A float in [0, 1) from a hash (salt gives independent draws from the same hash)."""
    with np.errstate(over="ignore"):
        x = _mix(h ^ np.uint64(salt * 0x2545F4914F6CDD1D & (2**64 - 1))) if salt else h
    return (x >> _S11).astype(np.float64) * _INV53


def u(*keys: int) -> float:
    """Scalar convenience: a float in [0, 1) from integer keys."""
    return float(uniform(hash_keys(*keys)))


def string_key(text: str) -> int:
    """A stable integer key for a string (Python's hash() is salted per process)."""
    value = 1469598103934665603
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 1099511628211) & (2**64 - 1)
    return value
