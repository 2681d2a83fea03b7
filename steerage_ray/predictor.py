"""Accuracy predictor of the global search (paper Sec. 4.4) and the regressor comparison (Fig. 3).

The predictor maps an encoded architecture (one row of ``SearchSpace.encode_many``) to its
validation accuracy. It is refitted on the Tune driver after every round of trials, so it
must be fast, single-threaded by default and deterministic per seed.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from scipy.stats import ConstantInputWarning, kendalltau
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

__all__ = ["AccuracyPredictor", "compare_regressors", "rank_correlation"]


class AccuracyPredictor(RegressorMixin, BaseEstimator):
    """Boosted decision trees (LightGBM) predicting accuracy from an architecture encoding.

    The paper fixes max depth 5 and up to 500 estimators. We train all 500 trees with a
    small learning rate instead of early stopping. On synthetic FFNN-space problems with
    100-400 samples (5-fold CV, benchmarks/RESULTS.md) neither wins everywhere: with
    low-noise targets 500 trees beat early stopping and 200 trees (up to 13 % lower MSE),
    with noisy targets early stopping or 200 trees were slightly better (Kendall tau about
    0.02 higher at 100 samples). Fixed 500 needs no hold-out carved out of ~100
    observations and costs the same every round. ``min_child_samples=10`` and row/column
    subsampling regularise small samples (``min_child_samples=5`` or no subsampling gave a
    higher CV MSE in all six settings measured); subsampling is seeded and runs with
    ``deterministic=True``, so the same seed always gives the same model. ``n_jobs=1``
    because Tune calls ``fit`` on the driver, next to the trials.

    ``min_child_samples`` is a ceiling: ``fit`` uses at most a fifth of the rows (and at
    least 2) per leaf, kept in ``min_child_samples_``. Otherwise a small search (16
    observations, 13 after subsampling) could not split at all and the predictor would
    be a constant, silently turning the guided rounds into pool order.

    Rows whose target is NaN or infinite (failed or diverged trials) are dropped by
    ``fit``; their number is kept in ``n_dropped_``.
    """

    def __init__(
        self,
        n_estimators: int = 500,
        max_depth: int = 5,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_child_samples: int = 10,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AccuracyPredictor":
        """Fit on the rows of ``X`` whose target in ``y`` is finite."""
        X, y, self.n_dropped_ = _finite_rows(X, y)
        self.n_features_in_ = X.shape[1]
        self.min_child_samples_ = min(self.min_child_samples, max(2, len(X) // 5))
        self.booster_ = LGBMRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples_,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            n_jobs=self.n_jobs,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        ).fit(X, y).booster_  # the raw Booster predicts 2x faster than the sklearn wrapper
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted accuracy for each row of ``X``, shape ``(m,)``."""
        check_is_fitted(self, "booster_")
        X = _as_matrix(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} columns but the predictor was fitted on "
                f"{self.n_features_in_}; encode with the same SearchSpace"
            )
        if len(X) == 0:
            return np.empty(0)
        return self.booster_.predict(X)

    def cross_val_kendall(self, X: np.ndarray, y: np.ndarray, folds: int = 5) -> float:
        """Kendall tau between targets and out-of-fold predictions of a fresh copy.

        Cheap enough to log once per search round; the global search cares about ranking,
        hence Kendall tau rather than MSE. Out-of-fold predictions are pooled before
        ranking (per-fold tau on 20 points is too noisy). Non-finite targets are dropped;
        ``folds`` is capped at the number of remaining rows (at least 3 are needed).
        Folds are shuffled with ``self.seed``.
        """
        if not isinstance(folds, (int, np.integer)) or folds < 2:
            raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
        X, y, _ = _finite_rows(X, y)
        if len(y) < 3:
            raise ValueError(
                f"cross_val_kendall needs at least 3 finite targets (each training fold "
                f"needs 2), got {len(y)}"
            )
        splitter = KFold(min(folds, len(y)), shuffle=True, random_state=self.seed)
        return rank_correlation(y, cross_val_predict(clone(self), X, y, cv=splitter))


def rank_correlation(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall tau-b between two score vectors; NaN when either is constant."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}"
        )
    if len(y_true) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return float(kendalltau(y_true, y_pred).statistic)


def compare_regressors(
    X: np.ndarray, y: np.ndarray, seed: int = 0, loo: bool = True, folds: int = 10
) -> pd.DataFrame:
    """Score the paper's six regressor families on (architecture, accuracy) data (Fig. 3).

    Every model is evaluated with leave-one-out (``loo=True``, the paper's protocol) or
    shuffled ``folds``-fold cross-validation: ``mse`` of the held-out predictions,
    ``kendall_tau`` between held-out predictions and targets, and ``fit_seconds``, the
    mean wall time of one fit. Models that need it see standardised features (and the MLP
    a standardised target, since accuracies vary on a tiny scale). Rows with non-finite
    targets are dropped. Returns one row per model, best (lowest) MSE first.

    Cost: leave-one-out refits every model once per sample. On 300 samples that is 15-25
    minutes on one core of our shared 2-core machine, mostly the Gaussian process (ARD
    Matern kernel, 2.6-4.5 s per fit; benchmarks/RESULTS.md); ``loo=False`` with 10 folds
    is 30 times cheaper.
    """
    X, y, _ = _finite_rows(X, y)
    if loo:
        splitter, protocol = LeaveOneOut(), "leave-one-out"
    else:
        if not isinstance(folds, (int, np.integer)) or folds < 2:
            raise ValueError(f"folds must be an integer >= 2 when loo=False, got {folds!r}")
        splitter = KFold(min(folds, len(y)), shuffle=True, random_state=seed)
        protocol = f"{min(folds, len(y))}-fold"
    rows = []
    for name, model in _candidate_regressors(X.shape[1], seed).items():
        predictions, fit_seconds = _held_out_predictions(model, X, y, splitter)
        rows.append({
            "model": name,
            "mse": float(np.mean((predictions - y) ** 2)),
            "kendall_tau": rank_correlation(y, predictions),
            "fit_seconds": fit_seconds,
            "protocol": protocol,
        })
    return pd.DataFrame(rows).sort_values("mse", ignore_index=True)


def _candidate_regressors(n_features: int, seed: int) -> dict[str, BaseEstimator]:
    """The six regressor families of the paper's comparison, with small-sample settings."""
    gp_kernel = (
        ConstantKernel(1.0) * Matern(length_scale=np.ones(n_features), nu=2.5)
        + WhiteKernel(noise_level=0.1)
    )
    mlp = MLPRegressor(
        hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=2000, random_state=seed
    )
    return {
        "gaussian_process": make_pipeline(
            StandardScaler(),
            GaussianProcessRegressor(kernel=gp_kernel, normalize_y=True, random_state=seed),
        ),
        "mlp": TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), mlp), transformer=StandardScaler()
        ),
        "linear_regression": LinearRegression(),
        "decision_tree": DecisionTreeRegressor(max_depth=5, random_state=seed),
        "boosted_trees": AccuracyPredictor(seed=seed),
        "bayesian_ridge": make_pipeline(StandardScaler(), BayesianRidge()),
    }


def _held_out_predictions(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray, splitter
) -> tuple[np.ndarray, float]:
    """Out-of-fold predictions of fresh clones of ``model`` and the mean fit time."""
    predictions = np.empty_like(y)
    fit_seconds = []
    for train, test in splitter.split(X):
        fold_model = clone(model)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GP/MLP convergence chatter on tiny folds
            fold_model.fit(X[train], y[train])
        fit_seconds.append(time.perf_counter() - start)
        predictions[test] = fold_model.predict(X[test])
    return predictions, float(np.mean(fit_seconds))


def _as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    """``X`` as a finite 2-D float array, or a ValueError saying what is wrong."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (architectures x encoded dimensions), got shape "
            f"{X.shape}; use SearchSpace.encode_many or reshape(1, -1) for one row"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite entries; encodings must be finite")
    return X


def _finite_rows(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of (X, y) with a finite target, and how many were dropped.

    Failed or diverged trials report NaN/inf accuracy; they carry no ranking information.
    """
    X = _as_matrix(X, "X")
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be a 1-D array with one target per row of X ({len(X)} rows), "
            f"got shape {y.shape}"
        )
    finite = np.isfinite(y)
    if finite.sum() < 2:
        raise ValueError(
            f"y needs at least 2 finite targets to fit a predictor, got {int(finite.sum())} "
            f"of {len(y)}; train more architectures first"
        )
    return X[finite], y[finite], int(len(y) - finite.sum())
