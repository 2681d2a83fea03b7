"""Standardization fitted on the training split only (no information leaks from val/test)."""

from __future__ import annotations

import numpy as np

_CHUNK_ROWS = 4096


def _reduction_axes(X: np.ndarray) -> tuple[int, ...]:
    """Per feature for tabular ``(N, d)``, per channel for images ``(N, C, H, W)``."""
    return (0,) if X.ndim == 2 else (0, 2, 3)


def train_statistics(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the training rows, in float64 and chunked.

    Chunking keeps the float64 temporaries small on MNIST/CIFAR-sized arrays. A
    (near-)constant feature gets std 1, so it standardizes to 0 instead of inf/NaN.
    """
    axes = _reduction_axes(X_train)
    mean = X_train.mean(axis=axes, dtype=np.float64, keepdims=True)
    squared = np.zeros_like(mean)
    for start in range(0, len(X_train), _CHUNK_ROWS):
        deviation = X_train[start:start + _CHUNK_ROWS].astype(np.float64) - mean
        squared += np.square(deviation).sum(axis=axes, keepdims=True)
    std = np.sqrt(squared / max(X_train.size // mean.size, 1))
    constant = std <= 1e-7 * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(constant, 1.0, std)


def standardize(X_train: np.ndarray, X_val: np.ndarray,
                X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize all three splits with statistics of ``X_train``; returns float32 copies."""
    mean, std = train_statistics(X_train)
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    return tuple(((X - mean32) / std32).astype(np.float32, copy=False)
                 for X in (X_train, X_val, X_test))
