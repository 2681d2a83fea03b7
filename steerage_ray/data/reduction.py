"""The paper's 11 dimensionality-reduction methods for feed-forward networks (Sec. 4.2.1).

Indices follow the paper: 1-4 random projections, 5 PCA, 6 polynomial kernel PCA,
7 Gaussian kernel PCA, 8 factor analysis, 9 Isomap, 10 ICA, 11 spectral embedding.
Every method is fitted on the training split and applied to all splits; the reduced
features are re-standardized with training statistics.

Scaling choices:

- Random projections and PCA use all training rows. The other scikit-learn methods are
  fitted on at most ``max_fit_rows`` seeded random training rows (their cost grows with
  the square of the rows, or they iterate over all rows), then transform every row in
  chunks, so MNIST-sized data fits in memory. ``meta["dr_fit_rows"]`` says how many
  rows were used.
- Spectral embedding has no out-of-sample transform. We embed the fitting rows, then map
  every row (fitting rows included, so all splits go through the same function) to the
  mean embedding of its ``n_neighbors`` nearest fitting rows: a k-nearest-neighbour
  (Nystrom-style) extension.
- Methods 1 and 2 differ only by a constant factor (1/sqrt(k)); with the same seed they
  draw proportional matrices, so after re-standardization they give identical features.
  That is a property of the paper's method set, kept as is.
- Warnings from fitting (e.g. FastICA convergence) are collected once into
  ``meta["dr_warnings"]`` and logged at DEBUG level instead of being printed per trial.
"""

from __future__ import annotations

import logging
import math
import warnings
from numbers import Real
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, FactorAnalysis, FastICA, KernelPCA
from sklearn.manifold import Isomap, SpectralEmbedding
from sklearn.neighbors import NearestNeighbors

from steerage_ray.data.cache import cached_features
from steerage_ray.data.choices import resolve_choice
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.scaling import standardize

logger = logging.getLogger(__name__)

DR_METHODS: tuple[str, ...] = (
    "rp_gaussian_scaled",  # 1: entries ~ N(0, 1/k)
    "rp_gaussian",         # 2: entries ~ N(0, 1)
    "rp_sign",             # 3: entries +-1 with probability 1/2
    "rp_achlioptas",       # 4: sqrt(3/k) * {+1: 1/6, 0: 2/3, -1: 1/6}
    "pca",
    "kernel_pca_poly",
    "kernel_pca_rbf",
    "factor_analysis",
    "isomap",
    "ica",
    "spectral_embedding",
)
DEFAULT_MAX_FIT_ROWS = 2000
_CHUNK_ROWS = 4096


class RandomProjection(BaseEstimator, TransformerMixin):
    """Multiply by a seeded random ``(d, k)`` matrix drawn from one of the paper's laws."""

    def __init__(self, n_components: int, distribution: str = "gaussian_scaled",
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.distribution = distribution
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "RandomProjection":
        rng = np.random.default_rng(self.random_state)
        shape = (X.shape[1], self.n_components)
        k = self.n_components
        if self.distribution == "gaussian_scaled":
            matrix = rng.normal(0.0, 1.0, shape) / math.sqrt(k)
        elif self.distribution == "gaussian":
            matrix = rng.normal(0.0, 1.0, shape)
        elif self.distribution == "sign":
            matrix = rng.choice([-1.0, 1.0], size=shape)
        elif self.distribution == "achlioptas":
            matrix = math.sqrt(3.0 / k) * rng.choice([1.0, 0.0, -1.0], size=shape,
                                                     p=[1 / 6, 2 / 3, 1 / 6])
        else:
            raise ValueError(f"distribution must be gaussian_scaled, gaussian, sign or "
                             f"achlioptas, got {self.distribution!r}")
        self.components_ = matrix.astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) @ self.components_


class ExtendedSpectralEmbedding(BaseEstimator, TransformerMixin):
    """Spectral embedding with a k-nearest-neighbour out-of-sample extension.

    ``fit`` embeds the given rows with scikit-learn's ``SpectralEmbedding``;
    ``transform`` maps any row to the mean embedding of its ``n_neighbors`` nearest
    fitted rows, the same function for every split.
    """

    def __init__(self, n_components: int, n_neighbors: int = 10,
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> "ExtendedSpectralEmbedding":
        embedder = SpectralEmbedding(n_components=self.n_components,
                                     random_state=self.random_state)
        self.embedding_ = embedder.fit_transform(X)
        self.neighbors_ = NearestNeighbors(n_neighbors=min(self.n_neighbors, len(X))).fit(X)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        neighbors = self.neighbors_.kneighbors(X, return_distance=False)
        return self.embedding_[neighbors].mean(axis=1)


# index -> (estimator factory(k, seed), fits on a subsample?)
_FACTORIES: dict[int, tuple[Callable[[int, int], BaseEstimator], bool]] = {
    1: (lambda k, seed: RandomProjection(k, "gaussian_scaled", seed), False),
    2: (lambda k, seed: RandomProjection(k, "gaussian", seed), False),
    3: (lambda k, seed: RandomProjection(k, "sign", seed), False),
    4: (lambda k, seed: RandomProjection(k, "achlioptas", seed), False),
    5: (lambda k, seed: PCA(n_components=k, random_state=seed), False),
    6: (lambda k, seed: KernelPCA(n_components=k, kernel="poly", random_state=seed), True),
    7: (lambda k, seed: KernelPCA(n_components=k, kernel="rbf", random_state=seed), True),
    8: (lambda k, seed: FactorAnalysis(n_components=k, random_state=seed), True),
    9: (lambda k, seed: Isomap(n_components=k), True),
    10: (lambda k, seed: FastICA(n_components=k, random_state=seed), True),
    11: (lambda k, seed: ExtendedSpectralEmbedding(n_components=k, random_state=seed), True),
}


def resolve_method(method: int | float | str) -> tuple[int, str]:
    """``(index, name)`` of a DR method given by index 1-11 or name."""
    return resolve_choice(method, DR_METHODS, "dr_method")


def reduced_dimension(n_features: int, ratio: float) -> int:
    """``k = round(d / ratio)``, halves rounded up; ``ratio`` must be >= 1 and give k >= 1."""
    if isinstance(ratio, bool) or not isinstance(ratio, Real) or not math.isfinite(ratio) \
            or ratio < 1:
        raise ValueError(f"dr_ratio must be a finite number >= 1 (the feature compression "
                         f"ratio d/k), got {ratio!r}")
    k = math.floor(n_features / float(ratio) + 0.5)
    if k < 1:
        raise ValueError(f"dr_ratio={ratio} leaves k = round({n_features} / {ratio}) = {k} "
                         f"features; use a dr_ratio of at most {2 * n_features}")
    return k


def _fit_rows(n_train: int, subsample: bool, max_fit_rows: int, seed: int) -> np.ndarray:
    if not subsample or n_train <= max_fit_rows:
        return np.arange(n_train)
    return np.sort(np.random.default_rng(seed).choice(n_train, max_fit_rows, replace=False))


def _max_components(index: int, n_fit_rows: int, n_features: int) -> int:
    """Random projections can keep every feature; PCA at most min(rows, features); the
    graph and kernel methods (and FA/ICA, conservatively) fewer components than rows."""
    if index <= 4:
        return n_features
    if index == 5:
        return min(n_fit_rows, n_features)
    return n_fit_rows - 1


def _reduce(dataset: Dataset, index: int, name: str, k: int, seed: int,
            max_fit_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    factory, subsample = _FACTORIES[index]
    splits = [X.reshape(len(X), -1) for X in (dataset.X_train, dataset.X_val, dataset.X_test)]
    rows = _fit_rows(len(splits[0]), subsample, max_fit_rows, seed)
    limit = _max_components(index, len(rows), splits[0].shape[1])
    if k > limit:
        raise ValueError(
            f"dr_ratio gives k = {k}, but {name} fitted on {len(rows)} rows can produce at "
            f"most {limit} components; use a larger dr_ratio"
            + (" or max_fit_rows" if subsample else ""))
    estimator = factory(k, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(splits[0][rows])
        reduced = [np.concatenate([estimator.transform(X[start:start + _CHUNK_ROWS])
                                   for start in range(0, len(X), _CHUNK_ROWS)])
                   for X in splits]
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if messages:
        logger.debug("%s on %s (k=%d): %s", name, dataset.name, k, "; ".join(messages))
    for split, Z in zip(("train", "val", "test"), reduced):
        if not np.isfinite(Z).all():
            raise FloatingPointError(f"{name} produced non-finite values for the {split} "
                                     f"split of {dataset.name!r} (k={k}, seed={seed})")
    added = {"dr_method": index, "dr_method_name": name, "dr_k": k,
             "dr_input_features": int(splits[0].shape[1]), "dr_fit_rows": int(len(rows)),
             "dr_seed": int(seed), "dr_warnings": messages,
             "dr_out_of_sample": "knn_extension" if index == 11 else "transform"}
    return (*standardize(*(Z.astype(np.float32) for Z in reduced)), added)


def reduce_dimensions(dataset: Dataset, method: int | float | str, ratio: float,
                      seed: int = 0, *, max_fit_rows: int = DEFAULT_MAX_FIT_ROWS,
                      cache: bool = True) -> Dataset:
    """Reduce ``dataset`` to ``k = round(d / ratio)`` features with DR method ``method``.

    ``method`` is an index 1-11 or a name from ``DR_METHODS``. Image datasets are
    flattened first; the result is tabular. Fitting uses training rows only (at most
    ``max_fit_rows`` of them for methods 6-11); ``seed`` drives the random matrices,
    subsampling and the scikit-learn estimators. Results are cached by (dataset
    fingerprint, method, k, seed, max_fit_rows), so ratios giving the same k share an
    entry; ``meta["dr_ratio"]`` records the ratio asked for.
    """
    index, name = resolve_method(method)
    k = reduced_dimension(dataset.n_features, ratio)
    if isinstance(max_fit_rows, bool) or not isinstance(max_fit_rows, int) or max_fit_rows < 2:
        raise ValueError(f"max_fit_rows must be an int >= 2, got {max_fit_rows!r}")
    params = {"method": name, "k": k, "seed": int(seed),
              "max_fit_rows": max_fit_rows if _FACTORIES[index][1] else None}
    reduced = cached_features(
        dataset, "reduce", params,
        lambda: _reduce(dataset, index, name, k, int(seed), max_fit_rows), cache=cache)
    return reduced.with_features(reduced.X_train, reduced.X_val, reduced.X_test,
                                 dr_ratio=float(ratio))
