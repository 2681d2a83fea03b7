"""SteerageSearcher with several objectives: a Pareto front of accuracy and size, with
the size objectives computed exactly (``cost_fn``), driven as Tune would."""

from __future__ import annotations

import numpy as np
import pytest

from steerage_ray.complexity_estimate import ArchitectureCosts
from steerage_ray.models import build_model, count_flops, count_params
from steerage_ray.searchers import SteerageSearcher
from steerage_ray.space import SearchSpace, ffnn_space, lenet_space

from searcher_driver import drive, finish

COSTS = ArchitectureCosts("ffnn", (64,), 10)


def accuracy(config: dict) -> float:
    """More width and depth help, with diminishing returns: a real trade-off with size."""
    widths = [config[f"neurons_{i}"] or 0 for i in range(1, 7)]
    return 0.99 - 2.0 / (10 + 0.05 * sum(widths) + 3 * config["num_layers"]) \
        - 0.002 * config["dr_ratio"]


def make_searcher(**overrides) -> SteerageSearcher:
    return SteerageSearcher(ffnn_space(n_features=64), ["val_acc", "params"], ["max", "min"],
                            cost_fn=COSTS, **{"budget": 40, "seed": 0, **overrides})


def test_the_front_is_exactly_the_non_dominated_trained_architectures():
    searcher = make_searcher()
    proposals, running, waits = drive(searcher, objective=accuracy, max_in_flight=4)
    finish(searcher, running, objective=accuracy)
    assert len(proposals) == 40 and waits == 0
    obs = searcher.observations
    assert {"val_acc", "params"} <= set(obs.columns)
    front = searcher.pareto_front
    points = obs[["val_acc", "params"]].to_numpy()
    for _, row in front.iterrows():  # nothing beats a front member on both
        better = (points[:, 0] >= row["val_acc"]) & (points[:, 1] <= row["params"])
        strictly = (points[:, 0] > row["val_acc"]) | (points[:, 1] < row["params"])
        assert not (better & strictly).any()
    for _, row in obs.drop(front.index).iterrows():  # everything else is beaten
        assert ((front["val_acc"] >= row["val_acc"]) & (front["params"] <= row["params"])
                ).any()
    assert front["val_acc"].is_monotonic_decreasing and len(front) >= 3
    strategy, start = searcher._strategy, searcher.plan.initial
    # unlike one objective's search, every 5th guided proposal explores to the end
    assert strategy.explore_until is None
    assert [g for g in range(40, 60) if strategy._exploring(start + g, "guided")] == \
        [44, 49, 54, 59]


def test_computed_objectives_are_the_built_models_counts():
    for family, space, shape in [("ffnn", ffnn_space(n_features=64), (64,)),
                                 ("lenet", lenet_space(image_size=8), (1, 8, 8))]:
        costs = ArchitectureCosts(family, shape, 10)
        for config in space.sobol(8, 1):
            from steerage_ray.complexity_estimate import model_input_shape

            model = build_model(family, config, model_input_shape(family, config, shape), 10)
            assert costs(config) == {"params": count_params(model),
                                     "flops": count_flops(model,
                                                          model_input_shape(family, config,
                                                                            shape))}
    searcher = make_searcher(budget=12)
    proposals, running, _ = drive(searcher, objective=accuracy)
    finish(searcher, running, objective=accuracy)
    obs = searcher.observations.set_index("trial_id")
    for trial_id, config in proposals:
        assert obs.loc[trial_id, "params"] == COSTS(config)["params"]


def test_concurrent_proposals_differ_and_spread_along_the_front():
    small, batches = [], []  # pooled over seeds: one seed's share varies (0.1-0.5)
    for seed in (3, 4, 5):
        searcher = make_searcher(budget=60, seed=seed)
        proposals, running, _ = drive(searcher, objective=accuracy, max_in_flight=4)
        finish(searcher, running, objective=accuracy)
        obs = searcher.observations
        params = obs[obs["phase"] == "guided"]["params"].to_numpy()
        front = searcher.pareto_front["params"]
        middle = np.sqrt(front.min() * front.max())  # the front's middle, on a log scale
        small.extend(params <= middle)
        batches.extend(len(set(params[i:i + 4])) > 1 for i in range(0, len(params) - 3, 4))
    assert 0.15 < np.mean(small) < 0.85, np.mean(small)
    assert np.mean(batches) > 0.8


def test_save_restore_keeps_every_objective(tmp_path):
    original = make_searcher(budget=20)
    first, running, _ = drive(original, objective=accuracy, max_in_flight=1, stop_after=9)
    original.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()
    restored.restore(tmp_path / "searcher.pkl")
    # Tune checks every result for ``metric``: only the trained objective, never params
    assert restored.metric == "val_acc" and restored.mode == "max"
    assert restored._metric == ["val_acc", "params"] and restored._mode == ["max", "min"]
    rest, running, _ = drive(restored, objective=accuracy, max_in_flight=1,
                             running=running, start=9)
    finish(restored, running, objective=accuracy)
    reference = make_searcher(budget=20)
    again, running, _ = drive(reference, objective=accuracy, max_in_flight=1)
    assert first + rest == again
    assert restored.observations[["val_acc", "params"]].notna().all().all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(metric=["val_acc", "params"], mode="max"), "lists of equal length"),
    (dict(metric=["val_acc", "params"], mode=["max", "best"]), "mode"),
    (dict(metric=["params", "flops"], mode=["min", "min"], cost_fn=COSTS),
     "at least one must be reported"),
    (dict(metric=["val_acc", "params"], mode=["max", "min"], algorithm="paper"),
     "algorithm='steerage'"),
    (dict(metric="val_acc", mode="max", cost_fn=5), "cost_fn"),
])
def test_bad_objectives_are_refused(kwargs, match):
    space = SearchSpace(ffnn_space(n_features=64).dimensions)
    with pytest.raises(ValueError, match=match):
        searcher = SteerageSearcher(space, **kwargs)
        searcher.suggest("t0")
