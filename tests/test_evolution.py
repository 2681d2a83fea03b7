"""Efficient evolutionary search (Alg. 2), resource constraints and analytic complexity."""

import numpy as np
import pytest
import torch

from steerage_ray.complexity_estimate import (ResourceConstraint, estimate_complexity,
                                              estimate_params, model_input_shape)
from steerage_ray.evolution import evolutionary_search
from steerage_ray.models import build_model, count_dense_params, count_flops
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.space import (Categorical, Condition, Integer, SearchSpace, ffnn_space,
                                lenet_space, resnet_space)

FFNN_INPUT = (64,)


@pytest.fixture(scope="module")
def space():
    return ffnn_space(n_features=FFNN_INPUT[0])


@pytest.fixture(scope="module")
def fitted_predictor(space):
    """A real LightGBM predictor fitted on a synthetic (clearly not trained) accuracy surface."""
    rng = np.random.default_rng(0)
    X = space.encode_many(space.random(200, rng))
    width = X[:, 1:7].sum(axis=1)
    y = (0.9 + 0.02 * np.log1p(width / 100) - 0.004 * (X[:, 0] - 3) ** 2
         - 0.001 * (X[:, 8] - 4) ** 2 + rng.normal(0, 0.003, len(X)))
    return AccuracyPredictor().fit(X, y)


def total_neurons(codes: np.ndarray) -> np.ndarray:
    """Synthetic score favouring big networks (codes 1..6 are neurons_1..6, 0 if inactive)."""
    return codes[:, 1:7].sum(axis=1)


def small_space() -> SearchSpace:
    return SearchSpace([
        Integer("depth", 1, 3),
        Integer("a", 0, 9),
        Integer("b", 0, 9, condition=Condition("depth", 2)),
        Integer("c", 0, 9, condition=Condition("depth", 3)),
        Categorical("act", ("relu", "tanh", "gelu")),
    ])


def distance_to_optimum(codes: np.ndarray) -> np.ndarray:
    """Known optimum: depth 3, a=7, b=2, c=5, act='gelu' (code 2); score 0 there, < 0 elsewhere."""
    return -np.abs(codes - np.array([3, 7, 2, 5, 2])).sum(axis=1)


def test_same_seed_same_search(space, fitted_predictor):
    runs = [evolutionary_search(space, fitted_predictor.predict, population=30, generations=20,
                                seed=seed) for seed in (5, 5, 6)]
    assert runs[0].population == runs[1].population
    np.testing.assert_array_equal(runs[0].scores, runs[1].scores)
    assert runs[0].history.equals(runs[1].history)
    assert runs[0].population != runs[2].population


def test_result_invariants_over_a_real_predictor(space, fitted_predictor):
    result = evolutionary_search(space, fitted_predictor.predict, population=40,
                                 generations=30, seed=1)
    history = result.history
    assert result.best_config == result.population[0]
    assert result.best_score == result.scores[0] == result.scores.max()
    assert result.best_score >= history["best_score"].iloc[0]  # the initial population's best
    assert history["best_score"].is_monotonic_increasing
    assert list(history["generation"]) == list(range(31))
    assert len(result.population) == 40
    keys = [space.key(config) for config in result.population]
    assert len(set(keys)) == 40
    assert all(space.contains(config) for config in result.population)
    # Scores are the predictor's own predictions of the returned configs.
    np.testing.assert_allclose(
        fitted_predictor.predict(space.encode_many(result.population)), result.scores)
    assert result.n_predictor_calls <= 31
    assert result.n_predicted >= 40
    assert list(result.frame.columns) == [*space.names, "predicted_score"]


def test_finds_a_known_optimum_in_a_small_space():
    space = small_space()
    result = evolutionary_search(space, distance_to_optimum, population=20, generations=60,
                                 mutation_prob=0.2, seed=0)
    assert result.best_score == 0
    assert result.best_config == {"depth": 3, "a": 7, "b": 2, "c": 5, "act": "gelu"}


def test_population_larger_than_the_space_uses_every_architecture():
    space = SearchSpace([Integer("x", 0, 4), Categorical("y", ("p", "q"))])
    result = evolutionary_search(space, lambda codes: codes[:, 0] + codes[:, 1],
                                 population=50, generations=3, seed=0)
    assert len(result.population) == 10
    assert result.best_config == {"x": 4, "y": "q"}


def test_code_level_mutation_changes_every_child_and_stays_in_the_space(space):
    # EES mutates its population as a code matrix with space.mutate_codes.
    rng = np.random.default_rng(0)
    parents = space.encode_many(space.random(300, rng))
    for prob in (0.0, 0.1, 1.0):
        children = space.mutate_codes(parents, prob, rng)
        assert (children != parents).any(axis=1).all()
        configs = space.decode_codes(children)
        assert all(space.contains(config) for config in configs)
        np.testing.assert_array_equal(space.encode_many(configs), children)
    single_change = space.mutate_codes(parents, 0.0, rng)
    # prob 0: exactly one dimension is resampled (plus any children it newly activates).
    always_active = [0, 1, 7, 8, 9]
    assert ((single_change[:, always_active] != parents[:, always_active]).sum(axis=1) <= 1).all()


def test_constraint_is_respected_and_binding(space):
    limit = 30_000
    constraint = ResourceConstraint("ffnn", FFNN_INPUT, 10, max_params=limit)
    free = evolutionary_search(space, total_neurons, population=30, generations=20, seed=2)
    bound = evolutionary_search(space, total_neurons, population=30, generations=20, seed=2,
                                constraint=constraint)
    assert estimate_params("ffnn", free.best_config, FFNN_INPUT, 10) > limit
    params = [estimate_params("ffnn", c, FFNN_INPUT, 10) for c in bound.population]
    assert max(params) <= limit


def test_flop_constraint_and_unsatisfiable_budget(space):
    constraint = ResourceConstraint("ffnn", FFNN_INPUT, 10, max_flops=40_000)
    result = evolutionary_search(space, total_neurons, population=20, generations=10, seed=3,
                                 constraint=constraint)
    assert all(estimate_complexity("ffnn", c, FFNN_INPUT, 10).flops <= 40_000
               for c in result.population)
    impossible = ResourceConstraint("ffnn", FFNN_INPUT, 10, max_params=10)
    with pytest.raises(ValueError, match="no admissible architecture"):
        evolutionary_search(space, total_neurons, population=5, generations=1,
                            constraint=impossible)


def test_excluded_architectures_are_never_proposed():
    space = small_space()
    first = evolutionary_search(space, distance_to_optimum, population=20, generations=60,
                                mutation_prob=0.2, seed=0)
    excluded = [space.key(first.best_config), first.population[1]]
    again = evolutionary_search(space, distance_to_optimum, population=20, generations=60,
                                mutation_prob=0.2, seed=0, exclude=excluded)
    keys = {space.key(config) for config in again.population}
    assert space.key(first.best_config) not in keys
    assert space.key(first.population[1]) not in keys
    assert again.best_score < first.best_score
    with pytest.raises(ValueError, match="exclude entries"):
        evolutionary_search(space, distance_to_optimum, exclude=[(1, 2)])


def test_initial_population_is_used_and_validated():
    space = small_space()
    optimum = {"depth": 3, "a": 7, "b": 2, "c": 5, "act": "gelu"}
    result = evolutionary_search(space, distance_to_optimum, population=10, generations=0,
                                 initial=[optimum], seed=4)
    assert result.history["best_score"].iloc[0] == 0
    assert result.best_config == optimum
    assert result.n_predictor_calls == 1
    with pytest.raises(ValueError, match="'a'"):
        evolutionary_search(space, distance_to_optimum, initial=[{**optimum, "a": 70}])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"population": 0}, "population"),
        ({"generations": -1}, "generations"),
        ({"mutation_prob": 1.5}, "mutation_prob"),
        ({"predict_fn": lambda codes: np.zeros(3)}, "one score per row"),
        ({"predict_fn": lambda codes: np.full(len(codes), np.nan)}, "NaN"),
        ({"predict_fn": "model"}, "callable"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    arguments = {"space": small_space(), "predict_fn": distance_to_optimum,
                 "population": 5, "generations": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        evolutionary_search(**arguments)


def test_model_input_shape_follows_the_data_preparation():
    assert model_input_shape("ffnn", {"dr_method": 5, "dr_ratio": 2.5}, (100,)) == (40,)
    assert model_input_shape("ffnn", {"dr_method": None}, (100,)) == (100,)
    assert model_input_shape("lenet", {"image_size": 14}, (1, 28, 28)) == (1, 14, 14)
    with pytest.raises(ValueError, match="input_shape"):
        model_input_shape("lenet", {}, (784,))
    with pytest.raises(ValueError, match="max_params"):
        ResourceConstraint("ffnn", FFNN_INPUT, 10, max_params=-5)
    with pytest.raises(ValueError, match="family"):
        ResourceConstraint("vgg", FFNN_INPUT, 10)


def _random_configs(space, n, seed):
    return space.random(n, np.random.default_rng(seed))


BOTTLENECK_RESNET = {
    "image_filter": 1, "image_size": 24, "blocks_1": 6, "blocks_2": 6, "blocks_3": 6,
    "blocks_4": 6, "conv1_filters": 56, "conv2_filters": 56, "conv3_filters": 112,
    "conv4_filters": 224, "conv5_filters": 448, "pooling": "max", "fc_layers": 2,
    "quant_bits": 8,
}


@pytest.mark.parametrize(
    "family, input_shape, configs",
    [
        ("ffnn", FFNN_INPUT, _random_configs(ffnn_space(n_features=64), 4, 0)),
        ("lenet", (1, 28, 28), _random_configs(lenet_space(14), 2, 1)
         + _random_configs(lenet_space(21), 2, 2)),
        ("resnet", (3, 32, 32), _random_configs(resnet_space(fixed_depth=True), 2, 3)
         + [BOTTLENECK_RESNET]),
    ],
)
def test_analytic_complexity_equals_the_builders_counts(family, input_shape, configs):
    """Params and FLOPs agree exactly with models.count_dense_params / count_flops."""
    torch.set_num_threads(1)
    for config in configs:
        shape = model_input_shape(family, config, input_shape)
        model = build_model(family, config, shape, 10, seed=0)
        estimate = estimate_complexity(family, config, input_shape, 10)
        assert estimate.params == count_dense_params(model)
        assert estimate.flops == count_flops(model, shape)
