"""Build a standardized, stratified-split ``Dataset`` from raw feature and label arrays.

Every loader (bundled, torchvision, files) ends here, so labels, splits and scaling
follow one set of rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steerage_ray.checks import is_integer
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.scaling import standardize
from steerage_ray.data.splits import encode_labels, split_count, stratified_split


def _as_features(X: Any, field: str) -> np.ndarray:
    """Features as a float array: ``(N, d)`` tabular, ``(N, H, W)`` -> ``(N, 1, H, W)``."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{field} must hold numbers, got dtype {X.dtype}; encode "
                         "categorical features as numbers first")
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim not in (2, 4):
        raise ValueError(f"{field} must have shape (N, d), (N, H, W) or (N, C, H, W), "
                         f"got {X.shape}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{field} contains {int((~np.isfinite(X)).sum())} NaN/inf "
                         "values; impute or drop them first")
    return X


def _kind_of(X: np.ndarray) -> str:
    return "tabular" if X.ndim == 2 else "image"


def from_arrays(name: str, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
                X_test: Any = None, y_test: Any = None, seed: int = 0,
                val_fraction: float = 0.2, test_fraction: float = 0.2,
                meta: dict | None = None) -> Dataset:
    """A ``Dataset`` from arrays: labels encoded, missing splits carved out, standardized.

    ``X`` is ``(N, d)`` (tabular), ``(N, H, W)`` or ``(N, C, H, W)`` (images). Missing
    splits are carved out of ``X`` by stratified, seeded sampling: ``test_fraction`` and
    ``val_fraction`` are fractions of the rows of ``X``. So the defaults give 60/20/20,
    and with an official test set ``val_fraction`` is a fraction of the official
    training set. Labels of any type map to ``0 .. C-1`` in sorted order
    (``meta["classes"]`` keeps the originals). Standardization statistics come from the
    training split only: per feature (tabular) or per channel (images).
    """
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    parts = {"train": (_as_features(X, "X"), y)}
    for split, X_split, y_split in (("val", X_val, y_val), ("test", X_test, y_test)):
        if (X_split is None) != (y_split is None):
            raise ValueError(f"X_{split} and y_{split} must be given together")
        if X_split is not None:
            parts[split] = (_as_features(X_split, f"X_{split}"), y_split)

    encoded, classes = encode_labels(*(labels for _, labels in parts.values()))
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if len(classes) else "no labels"
        raise ValueError(f"y has {found}; classification needs at least 2 classes")
    parts = {split: (features, codes) for (split, (features, _)), codes
             in zip(parts.items(), encoded)}
    for split, (features, codes) in parts.items():
        suffix = "" if split == "train" else f"_{split}"
        if len(codes) != len(features):
            raise ValueError(f"y{suffix} has {len(codes)} labels but X{suffix} has "
                             f"{len(features)} rows")
        if features.shape[1:] != parts["train"][0].shape[1:]:
            raise ValueError(f"X{suffix} rows have shape {features.shape[1:]}, but X rows "
                             f"have shape {parts['train'][0].shape[1:]}")

    X, y = parts.pop("train")
    n_pool = len(X)  # fractions refer to the rows of X
    splits_meta: dict[str, Any] = {}
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        if split not in parts:
            field = f"{split}_fraction"
            rest, chosen = stratified_split(y, split_count(n_pool, fraction, field), seed, field)
            parts[split] = (X[chosen], y[chosen])
            X, y = X[rest], y[rest]
            splits_meta[field] = float(fraction)

    (X_val, y_val), (X_test, y_test) = parts["val"], parts["test"]
    X_train, X_val, X_test = standardize(X, X_val, X_test)
    return Dataset(
        name=name, X_train=X_train, y_train=y, X_val=X_val, y_val=y_val,
        X_test=X_test, y_test=y_test, n_classes=len(classes), kind=_kind_of(X_train),
        meta={**(meta or {}), "split_seed": int(seed), **splits_meta,
              "classes": classes.tolist(), "standardized_on": "train"},
    )
