"""Datasets available offline: scikit-learn's bundled sets and generated MNIST-1D."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from sklearn import datasets as sklearn_datasets

from steerage_ray.data.arrays import from_arrays
from steerage_ray.data.cache import ArrayCache
from steerage_ray.data.dataset import Dataset

SKLEARN_LOADERS = {
    "digits": sklearn_datasets.load_digits,
    "wine": sklearn_datasets.load_wine,
    "breast_cancer": sklearn_datasets.load_breast_cancer,
    "iris": sklearn_datasets.load_iris,
}

# Generated MNIST-1D arrays live in <cache dir>/mnist1d/; generation takes seconds.
MNIST1D_CACHE = ArrayCache(subdirectory="mnist1d")


def load_sklearn(name: str, *, seed: int = 0, val_fraction: float = 0.2,
                 test_fraction: float = 0.2) -> Dataset:
    """One of scikit-learn's bundled sets, split 60/20/20 (stratified) by default."""
    X, y = SKLEARN_LOADERS[name](return_X_y=True)
    return from_arrays(name, X, y, seed=seed, val_fraction=val_fraction,
                       test_fraction=test_fraction,
                       meta={"source": f"sklearn.datasets.load_{name}"})


def load_digits_images(*, seed: int = 0, val_fraction: float = 0.2,
                       test_fraction: float = 0.2) -> Dataset:
    """The digits set as ``(N, 1, 8, 8)`` images: same rows and split as ``digits``."""
    X, y = sklearn_datasets.load_digits(return_X_y=True)
    return from_arrays("digits_images", X.reshape(-1, 1, 8, 8), y, seed=seed,
                       val_fraction=val_fraction, test_fraction=test_fraction,
                       meta={"source": "sklearn.datasets.load_digits"})


def _generator_args(overrides: dict[str, Any] | None) -> dict[str, Any]:
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url")  # only used by mnist1d's downloader, which we never call
    unknown = sorted(set(overrides or {}) - set(args))
    if unknown:
        raise ValueError(f"generator_args has unknown keys {unknown}; valid keys: {sorted(args)}")
    return {**args, **(overrides or {})}


def mnist1d_arrays(generator_args: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """MNIST-1D ``x, y, x_test, y_test`` from ``mnist1d.data.make_dataset`` (never downloads).

    The result is cached on disk, keyed by the full generator arguments. The global
    ``random``/``numpy.random`` state that ``make_dataset`` reseeds is restored, so
    loading the data does not perturb the caller's randomness.
    """
    args = _generator_args(generator_args)
    key = {"operation": "mnist1d", "generator_args": args}
    cached = MNIST1D_CACHE.get(key)
    if cached is not None:
        return cached
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    arrays = {name: np.asarray(data[name]) for name in ("x", "y", "x_test", "y_test")}
    MNIST1D_CACHE.put(key, arrays)
    return arrays


def load_mnist1d(*, seed: int = 0, val_fraction: float = 0.2,
                 generator_args: dict[str, Any] | None = None) -> Dataset:
    """MNIST-1D with its own train/test split; validation = 20% of train (stratified).

    ``generator_args`` overrides entries of ``mnist1d.data.get_dataset_args()`` (e.g.
    ``num_samples``); the defaults give the standard 4000/1000 set with 40 features.
    """
    arrays = mnist1d_arrays(generator_args)
    return from_arrays("mnist1d", arrays["x"], arrays["y"], X_test=arrays["x_test"],
                       y_test=arrays["y_test"], seed=seed, val_fraction=val_fraction,
                       meta={"source": "mnist1d.data.make_dataset"})
