"""The default search's predictor: an ensemble of boosted-tree models with an uncertainty.

STEERAGE predicts accuracy with boosted decision trees (LightGBM). A point prediction
cannot say where it is unsure, so a search that exploits it keeps proposing around the
architectures it already knows. ``BoostedEnsemble`` fits ``n_members`` LightGBM models,
each on a bootstrap resample of the observations (as bootstrap weights, so the data is
binned once) with its own seed for column subsampling. Their spread is the
uncertainty; each member is also one plausible "world" for Thompson sampling.

Decisions for small samples (the search fits it on 5-400 observations):

* targets are standardised, and the leaf size adapts to the sample (``n // 10``, at
  least 2), so a model on 10 points can still split;
* trees are shallow (``max_depth`` 5, the paper's, with at most 16 leaves) with an L2
  penalty on leaf values, and few of them (``n_estimators`` 60 at learning rate 0.15):
  on 20-200 points more trees only memorise the noise;
* predictions are clipped to the observed target range widened by ``margin`` of its
  width (and to ``bounds`` when given, e.g. (0, 1) for accuracies): a tree ensemble
  summing residual fits can otherwise leave the range it learned from;
* rows carry optional weights (e.g. trials stopped early by a scheduler count less).

Pickling writes each member as LightGBM's model text. A fitted member never changes
(``fit`` replaces it), so its text is made once and kept: Tune saves the searcher after
every result, and re-serialising eight boosters each time was about 7 of the 10 ms
such a save took on the driver at 100 observations. ``serialise`` makes the missing
texts; the search's refit worker calls it when it has no refit to run
(``RefitQueue``'s ``when_idle``), so the driver's saves only copy them.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

_DATASET_PARAMS = {"min_data_in_bin": 1, "max_bin": 63, "feature_pre_filter": False,
                   "verbose": -1, "num_threads": 1}


class BoostedEnsemble:
    """Bootstrap ensemble of LightGBM regressors; see the module docstring."""

    def __init__(self, n_members: int = 8, n_estimators: int = 60,
                 learning_rate: float = 0.15, max_depth: int = 5, num_leaves: int = 16,
                 colsample: float = 0.8, l2: float = 1.0, margin: float = 0.1,
                 bounds: tuple[float, float] | None = None, seed: int = 0) -> None:
        self.n_members = n_members
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.num_leaves = num_leaves
        self.colsample = colsample
        self.l2 = l2
        self.margin = margin
        self.bounds = bounds
        self.seed = seed
        self.members_: list[lgb.Booster] = []
        self._texts: list[str | None] = []  # each member's model text, once made

    def fit(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None,
            members: list[int] | None = None) -> "BoostedEnsemble":
        """Fit (all, or only the listed) members on rows ``X`` with targets ``y``.

        Refitting a subset keeps the others as they are: a cheap way to follow a
        growing data set one observation at a time.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        weights = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        n = len(y)
        mean, scale = float(y.mean()), float(y.std()) or 1.0
        low, high = float(y.min()), float(y.max())
        pad = self.margin * (high - low)
        self.range_ = (low - pad, high + pad)
        if self.bounds is not None:
            self.range_ = (max(self.range_[0], self.bounds[0]),
                           min(self.range_[1], self.bounds[1]))
        dataset = lgb.Dataset(X, (y - mean) / scale, params=_DATASET_PARAMS,
                              free_raw_data=False).construct()
        params = {
            "objective": "regression", "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "max_depth": self.max_depth,
            "min_data_in_leaf": max(2, n // 10), "min_sum_hessian_in_leaf": 0.5,
            "feature_fraction": self.colsample, "lambda_l2": self.l2,
            "num_threads": 1, "deterministic": True, "force_row_wise": True,
            "verbose": -1,
        }
        if len(self.members_) != self.n_members:
            self.members_ = [None] * self.n_members
            self._texts = [None] * self.n_members
            self.standardisation_ = [(0.0, 1.0)] * self.n_members
            members = None
        for member in range(self.n_members) if members is None else members:
            rng = np.random.default_rng([self.seed, member, n])
            counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            counts *= weights
            dataset.set_weight(counts)
            self.standardisation_[member] = (mean, scale)  # each member keeps its own
            self.members_[member] = lgb.train({**params, "seed": self.seed * 1000 + member},
                                              dataset, num_boost_round=self.n_estimators,
                                              keep_training_booster=True)
            self._texts[member] = None
        self.n_fitted_ = n
        return self

    def serialise(self) -> "BoostedEnsemble":
        """Make the model text of every member that has none yet (what pickling writes;
        see the module docstring)."""
        self._texts = [text if text is not None or booster is None
                       else booster.model_to_string()
                       for booster, text in zip(self.members_, self._texts)]
        return self

    def __getstate__(self) -> dict:
        state = dict(self.serialise().__dict__)
        state["members_"] = state.pop("_texts")
        return state

    def __setstate__(self, state: dict) -> None:
        texts = state.pop("members_")
        self.__dict__.update(state)
        self._texts = list(texts)
        self.members_ = [None if text is None else lgb.Booster(model_str=text)
                         for text in texts]

    def copy(self) -> "BoostedEnsemble":
        """A copy whose later ``fit`` leaves this ensemble as it is (the fitted
        boosters, which ``fit`` replaces and never changes, are shared; not through
        pickling, which would rebuild every booster from its text)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.members_ = list(self.members_)
        twin._texts = list(self._texts)
        if hasattr(self, "standardisation_"):
            twin.standardisation_ = list(self.standardisation_)
        return twin

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """``(n_members, m)`` predictions, clipped to the plausible range."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0:
            return np.empty((self.n_members, 0))
        return np.array([self.predict_member(m, X) for m in range(self.n_members)])

    def predict_member(self, member: int, X: np.ndarray) -> np.ndarray:
        """One member's predictions (e.g. after refitting only that member)."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0:
            return np.empty(0)
        mean, scale = self.standardisation_[member]
        raw = self.members_[member].predict(X, num_threads=1)
        return np.clip(raw * scale + mean, *self.range_)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation for each row of ``X``."""
        members = self.predict_members(X)
        return members.mean(axis=0), members.std(axis=0)

