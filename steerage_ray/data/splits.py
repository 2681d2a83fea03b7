"""Label encoding and seeded, stratified train/validation/test splitting."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.model_selection import train_test_split


def encode_labels(*label_arrays: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Map arbitrary label values to int64 codes ``0 .. C-1``, consistently across arrays.

    The codes follow the sorted order of the distinct values seen in *all* arrays, so a
    class that only occurs in the test set still gets a code. Returns the encoded arrays
    and the sorted original values (``classes[code] == original label``).
    """
    flat = [np.asarray(labels).reshape(-1) for labels in label_arrays]
    classes = np.unique(np.concatenate(flat))
    encoded = [np.searchsorted(classes, labels).astype(np.int64) for labels in flat]
    return encoded, classes


def split_count(n: int, fraction: float, field: str) -> int:
    """Number of rows a ``fraction`` of ``n`` rows amounts to, validated."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real) \
            or not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"{field} must be a number strictly between 0 and 1, got {fraction!r}")
    return int(round(float(fraction) * n))


def stratified_split(y: np.ndarray, n_split: int, seed: int,
                     field: str) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into ``(rest, split)`` with ``len(split) == n_split``.

    Class proportions are preserved in both parts; the same ``seed`` gives the same
    split. ``field`` names the option responsible for ``n_split`` in error messages.
    """
    indices = np.arange(len(y))
    try:
        rest, split = train_test_split(indices, test_size=n_split, stratify=y,
                                       random_state=seed)
    except ValueError as error:
        raise ValueError(
            f"{field} cannot give a stratified split of {len(y)} rows with "
            f"{len(np.unique(y))} classes into {n_split} rows: {error}. Every class needs "
            f"at least 2 examples and each part at least one row per class; adjust {field}."
        ) from error
    return np.sort(rest), np.sort(split)
