"""AccuracyPredictor, rank_correlation and compare_regressors on synthetic ranking problems."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from steerage_ray.predictor import AccuracyPredictor, compare_regressors, rank_correlation


def synthetic_accuracies(n: int, seed: int, n_features: int = 6, noise: float = 0.003):
    """Grid-valued 'architectures' and a smooth accuracy surface with one interaction."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 10, size=(n, n_features)).astype(float)
    y = (0.9 - 0.002 * (X[:, 0] - 6) ** 2 + 0.004 * X[:, 1] - 0.003 * X[:, 2]
         + 0.0005 * X[:, 0] * X[:, 3] + rng.normal(0.0, noise, n))
    return X, y


def test_fit_predict_shapes():
    X, y = synthetic_accuracies(120, seed=0)
    predictor = AccuracyPredictor().fit(X, y)
    assert predictor.n_features_in_ == 6
    assert predictor.n_dropped_ == 0
    predictions = predictor.predict(X[:30])
    assert predictions.shape == (30,)
    assert np.isfinite(predictions).all()
    assert predictor.predict(np.empty((0, 6))).shape == (0,)


def test_same_seed_same_model_and_seed_matters():
    X, y = synthetic_accuracies(150, seed=1)
    queries, _ = synthetic_accuracies(50, seed=2)
    first = AccuracyPredictor(seed=3).fit(X, y).predict(queries)
    again = AccuracyPredictor(seed=3).fit(X, y).predict(queries)
    other = AccuracyPredictor(seed=4).fit(X, y).predict(queries)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_non_finite_targets_are_dropped_and_counted():
    X, y = synthetic_accuracies(100, seed=5)
    bad = y.copy()
    bad[[3, 17, 40]] = np.nan
    bad[[8, 60]] = [np.inf, -np.inf]
    keep = np.isfinite(bad)
    predictor = AccuracyPredictor().fit(X, bad)
    assert predictor.n_dropped_ == 5
    clean = AccuracyPredictor().fit(X[keep], y[keep])
    np.testing.assert_array_equal(predictor.predict(X), clean.predict(X))


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.zeros((5, 3)), np.array([0.5, np.nan, np.nan, np.inf, np.nan]), "at least 2 finite"),
        (np.zeros((5, 3)), np.zeros(4), "one target per row"),
        (np.zeros((5, 3)), np.zeros((5, 1)), "1-D"),
        (np.zeros(5), np.zeros(5), "2-D"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), np.zeros(2), "NaN or infinite"),
    ],
)
def test_bad_training_data_raises(X, y, message):
    with pytest.raises(ValueError, match=message):
        AccuracyPredictor().fit(X, y)


def test_predict_checks_fitted_and_width():
    with pytest.raises(NotFittedError):
        AccuracyPredictor().predict(np.zeros((2, 3)))
    X, y = synthetic_accuracies(40, seed=6)
    predictor = AccuracyPredictor().fit(X, y)
    with pytest.raises(ValueError, match="fitted on 6"):
        predictor.predict(np.zeros((2, 5)))


def test_learns_a_known_ranking_on_held_out_architectures():
    X, y = synthetic_accuracies(300, seed=7)
    X_new, y_new = synthetic_accuracies(200, seed=8)
    predictor = AccuracyPredictor().fit(X, y)
    assert rank_correlation(y_new, predictor.predict(X_new)) > 0.7


def test_cross_val_kendall_separates_signal_from_noise():
    X, y = synthetic_accuracies(150, seed=9)
    predictor = AccuracyPredictor(seed=1)
    signal = predictor.cross_val_kendall(X, y, folds=5)
    assert signal > 0.6
    assert predictor.cross_val_kendall(X, y, folds=5) == signal
    noise = np.random.default_rng(10).normal(size=len(y))
    assert abs(predictor.cross_val_kendall(X, noise, folds=5)) < 0.3
    with pytest.raises(ValueError, match="folds"):
        predictor.cross_val_kendall(X, y, folds=1)


def test_sklearn_params_and_clone():
    predictor = AccuracyPredictor(learning_rate=0.1, seed=7)
    assert "learning_rate=0.1" in repr(predictor)
    params = clone(predictor).get_params()
    assert params["seed"] == 7 and params["max_depth"] == 5 and params["n_estimators"] == 500
    assert predictor.set_params(n_estimators=50).n_estimators == 50


def test_rank_correlation():
    scores = np.array([0.1, 0.4, 0.2, 0.9])
    assert rank_correlation(scores, scores * 2) == pytest.approx(1.0)
    assert rank_correlation(scores, -scores) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(scores, np.ones(4)))
    with pytest.raises(ValueError, match="same length"):
        rank_correlation(scores, scores[:3])


@pytest.mark.parametrize("loo, n, protocol", [
    (False, 60, "5-fold"),
    pytest.param(True, 20, "leave-one-out", marks=pytest.mark.slow),  # 6 x 20 fits
])
def test_compare_regressors_scores_all_six_models(loo, n, protocol):
    X, y = synthetic_accuracies(n, seed=11, n_features=4)
    y[0] = np.nan
    table = compare_regressors(X, y, seed=0, loo=loo, folds=5)
    assert set(table["model"]) == {"gaussian_process", "mlp", "linear_regression",
                                   "decision_tree", "boosted_trees", "bayesian_ridge"}
    assert np.isfinite(table[["mse", "kendall_tau", "fit_seconds"]].to_numpy()).all()
    assert (table["mse"] > 0).all()
    assert table["mse"].is_monotonic_increasing
    assert (table["protocol"] == protocol).all()


def test_pickle_round_trip_keeps_predictions():
    """Tune pickles the searcher, and with it the fitted predictor."""
    X, y = synthetic_accuracies(80, seed=12)
    predictor = AccuracyPredictor().fit(X, y)
    restored = pickle.loads(pickle.dumps(predictor))
    np.testing.assert_array_equal(restored.predict(X), predictor.predict(X))


def test_a_small_sample_still_gives_a_ranking_predictor():
    # 16 observations (a small search's first round) must not give a constant model.
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(16, 5))
    y = X[:, 0] + 0.5 * X[:, 1]
    predictor = AccuracyPredictor(seed=0).fit(X, y)
    assert predictor.min_child_samples_ == 3
    X_new = rng.uniform(0, 1, size=(200, 5))
    predicted = predictor.predict(X_new)
    assert np.unique(predicted).size > 10
    assert rank_correlation(X_new[:, 0] + 0.5 * X_new[:, 1], predicted) > 0.4
