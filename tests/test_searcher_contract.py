"""SteerageSearcher's contract with Tune, driven directly (no Tuner), like Ray's own
searcher tests: set_search_properties / suggest / on_trial_result / on_trial_complete.

Objectives are cheap synthetic functions of the config so that every property of the
state machine can be checked exactly; the Tune integration is in test_searcher_tune.py.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from ray import tune
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.sample import Domain

from steerage_ray.data import check_space_fits, load_dataset
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.searchers import SearchPlan, SteerageSearcher
from steerage_ray.space import ffnn_space

from searcher_driver import accuracy, drive, finish, small_space

SMALL = dict(algorithm="paper", count=128, iter_count=6, iterations=2, ees_population=20, ees_generations=10,
             predictor_params={"n_estimators": 60, "min_child_samples": 2})


def make_searcher(**overrides) -> SteerageSearcher:
    return SteerageSearcher(small_space(), "val_acc", "max", **{**SMALL, **overrides})


def arch_key(searcher, config):
    return searcher.space.key(config)


def test_full_run_proposes_every_phase_exactly_once_then_finishes():
    searcher = make_searcher()
    proposals, running, waits = drive(searcher)
    finish(searcher, running)
    plan = searcher.plan
    assert plan == SearchPlan(6, 6, 2, 1)
    assert len(proposals) == plan.total == 6 + 2 * 6 + 1
    assert searcher.suggest("after-the-end") == Searcher.FINISHED
    assert waits > 0  # rounds had to wait for results before the next refit
    keys = [arch_key(searcher, config) for _, config in proposals]
    assert len(set(keys)) == len(keys), "an architecture was proposed twice"
    obs = searcher.observations
    assert obs.groupby("phase").size().to_dict() == {"initial": 6, "iterative": 12, "final": 1}
    assert (obs["status"] == "completed").all()
    assert list(searcher.round_scores["round"]) == [0, 1, 2, 3]
    # Algorithm 1 draws from the Sobol pool; the final round comes from EES.
    pool = {tuple(c[n] for n in searcher.space.names)
            for c in searcher.space.sobol(SMALL["count"], 0)}
    assert all(k in pool for k in keys[:-1])


def test_suggestions_fill_every_key_with_plain_values():
    searcher = make_searcher()
    config = searcher.suggest("t0")
    assert set(config) == set(searcher.space.names) | {"family"}
    assert config["family"] == "ffnn"
    for key, value in config.items():
        assert not isinstance(value, Domain), key
    if config["num_layers"] < 3:
        assert config["neurons_3"] is None  # inactive conditional dimension


def test_suggest_returns_none_while_a_round_waits_and_tracks_only_returned_trials():
    searcher = make_searcher()
    first_round = [searcher.suggest(f"t{i}") for i in range(6)]
    assert all(isinstance(c, dict) for c in first_round)
    assert searcher.suggest("t6") is None  # round 0 handed out, nothing reported yet
    assert searcher.suggest("t7") is None
    assert searcher.in_flight == [f"t{i}" for i in range(6)]
    for i, config in enumerate(first_round[:5]):
        searcher.on_trial_complete(f"t{i}", {"val_acc": accuracy(config)})
    assert searcher.suggest("t8") is None  # one result still missing
    searcher.on_trial_complete("t5", {"val_acc": accuracy(first_round[5])})
    assert isinstance(searcher.suggest("t9"), dict)
    assert searcher.phase == "iterative"
    assert "t6" not in searcher.in_flight and "t8" not in searcher.in_flight


def test_final_proposal_is_the_ees_winner_and_beats_every_seen_prediction():
    """EES starts from the seen architecture the predictor scores best and is elitist,
    so its winner's predicted score is >= the prediction for every trained architecture;
    the final round proposes the best *unseen* member of the EES population."""
    searcher = make_searcher(final_count=2)
    proposals, running, _ = drive(searcher)
    finish(searcher, running)
    ees = searcher.ees_result
    seen = [config for _, config in proposals]
    trained = [c for _, c in proposals[:-2]]
    predicted_seen = searcher.predictor.predict(searcher.space.encode_many(trained))
    assert ees.best_score >= predicted_seen.max() - 1e-12
    final_keys = [arch_key(searcher, c) for _, c in proposals[-2:]]
    unseen_ranked = [arch_key(searcher, c) for c in ees.population
                     if arch_key(searcher, c) not in
                     {arch_key(searcher, s) for s in seen[:-2]}]
    assert final_keys == unseen_ranked[:2]
    final = searcher.observations.query("phase == 'final'")
    assert np.allclose(final["predicted"], searcher.predictor.predict(
        searcher.space.encode_many([c for _, c in proposals[-2:]])))


def test_final_config_is_merged_into_final_round_only():
    searcher = make_searcher(final_config={"epochs": 50})
    proposals, running, _ = drive(searcher)
    assert all("epochs" not in config for _, config in proposals[:-1])
    assert proposals[-1][1]["epochs"] == 50


def test_failed_nan_inf_and_missing_metric_trials_are_counted_and_excluded():
    kinds = ["nan", "inf", "missing", "error", "ok", "ok"]
    outcomes = {}

    def sabotage(trial_id, result):
        kind = outcomes[trial_id] = kinds[int(trial_id[1:]) % len(kinds)]
        return {"nan": {"val_acc": float("nan")}, "inf": {"val_acc": float("inf")},
                "missing": {"loss": 1.0}, "error": None}.get(kind, result)

    searcher = make_searcher()
    proposals, running, _ = drive(searcher, outcome=sabotage)
    assert len(proposals) == searcher.plan.total  # the search still finished, exactly
    obs = searcher.observations.set_index("trial_id")
    for trial_id, kind in outcomes.items():
        assert obs.loc[trial_id, "status"] == ("completed" if kind == "ok" else "failed")
        assert math.isfinite(obs.loc[trial_id, "metric"]) == (kind == "ok")
    # The predictor saw only the successful trials: nothing left for it to drop, and a
    # refit on exactly those rows predicts the same.
    assert searcher.predictor.n_dropped_ == 0
    ok = obs[(obs["status"] == "completed") & (obs["phase"] != "final")]
    configs = [searcher.trial(trial_id)["config"] for trial_id in ok.index]
    refit = AccuracyPredictor(seed=0, **SMALL["predictor_params"]).fit(
        searcher.space.encode_many(configs), ok["metric"].to_numpy())
    X = searcher.space.encode_many(searcher.space.sobol(32, 9))
    assert np.array_equal(refit.predict(X), searcher.predictor.predict(X))


def test_best_reported_metric_labels_early_stopped_trials():
    """An ASHA-stopped trial completes with its last result; its label is the best value
    it reported (mode max here, min below) and its iteration count is kept."""
    searcher = make_searcher()
    config = searcher.suggest("t0")
    for iteration, value in enumerate([0.5, 0.8, 0.7], start=1):
        searcher.on_trial_result("t0", {"val_acc": value, "training_iteration": iteration})
    searcher.on_trial_complete("t0", {"val_acc": 0.7, "training_iteration": 3})
    row = searcher.observations.set_index("trial_id").loc["t0"]
    assert row["metric"] == 0.8 and row["iterations"] == 3
    assert config is not None

    minimiser = SteerageSearcher(small_space(), "loss", "min", **SMALL)
    minimiser.suggest("m0")
    minimiser.on_trial_result("m0", {"loss": 0.4, "training_iteration": 1})
    minimiser.on_trial_complete("m0", {"loss": 0.6, "training_iteration": 2})
    assert minimiser.observations.set_index("trial_id").loc["m0", "metric"] == 0.4


def test_mode_min_searches_for_low_values():
    searcher = SteerageSearcher(small_space(), "error", "min", **SMALL)
    proposals, running, _ = drive(searcher, objective=lambda c: 1.0 - accuracy(c))
    finish(searcher, running, objective=lambda c: 1.0 - accuracy(c))
    obs = searcher.observations
    random_round = obs[obs["round"] == 0]["metric"].mean()
    guided = obs[obs["round"] == 2]["metric"].mean()
    assert guided < random_round  # the predictor steers towards low error


def test_max_concurrency_is_honoured_internally():
    searcher = make_searcher()
    limiter = ConcurrencyLimiter(searcher, max_concurrent=2)
    assert searcher.set_max_concurrency(2) is True
    assert limiter.suggest("a") is not None and limiter.suggest("b") is not None
    assert limiter.suggest("c") is None  # 2 in flight
    limiter.on_trial_complete("a", {"val_acc": 0.5})
    assert limiter.suggest("d") is not None
    assert len(searcher.in_flight) == 2
    with pytest.raises(ValueError, match="max_concurrent"):
        searcher.set_max_concurrency(0)


def _assert_continues_identically(interrupt_at: int, tmp_path) -> None:
    reference, _, _ = drive(make_searcher(), max_in_flight=3)

    original = make_searcher()
    first, running, _ = drive(original, max_in_flight=3, stop_after=interrupt_at)
    original.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()  # fresh, and no set_search_properties
    restored.restore(tmp_path / "searcher.pkl")
    assert restored.metric == "val_acc" and restored.mode == "max"
    assert restored.in_flight == [trial_id for trial_id, _ in running]
    # Tune resumes the in-flight trials under their ids; they complete as usual.
    rest, _, _ = drive(restored, max_in_flight=3, running=running, start=interrupt_at)
    assert first + rest == reference


@pytest.mark.parametrize("interrupt_at", [4, 9, 18])
def test_save_restore_mid_run_continues_identically(interrupt_at, tmp_path):
    _assert_continues_identically(interrupt_at, tmp_path)


def test_requeue_in_flight_reproposes_lost_trials_without_duplicates(tmp_path):
    searcher = make_searcher()
    first, running, _ = drive(searcher, max_in_flight=3, stop_after=8)
    searcher.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()
    restored.restore(tmp_path / "searcher.pkl")
    lost = restored.requeue_in_flight()  # the old experiment will never report these
    assert lost == [trial_id for trial_id, _ in running]
    again = [(f"new{i}", restored.suggest(f"new{i}")) for i in range(len(lost))]
    assert [config for _, config in again] == [config for _, config in running]
    restored.on_trial_complete(lost[0], {"val_acc": 0.99})  # a stale report: ignored
    assert lost[0] not in set(restored.observations["trial_id"])
    rest, _, _ = drive(restored, prefix="r", running=again)
    trained = [c for tid, c in first if tid not in lost] + [c for _, c in again + rest]
    keys = [arch_key(restored, c) for c in trained]
    assert len(keys) == len(set(keys)) == restored.plan.total
    assert len(restored.observations) == restored.plan.total


def test_get_state_set_state_round_trip():
    searcher = make_searcher()
    drive(searcher, stop_after=7)
    clone = SteerageSearcher()
    clone.set_state(searcher.get_state())
    assert clone.suggest("x") == searcher.suggest("x")


def test_tune_param_space_with_nested_dict_and_budget_from_num_samples():
    param_space = {
        "model": {"width": tune.choice([16, 32, 64]), "depth": tune.randint(1, 4)},
        "lr": tune.loguniform(1e-4, 1e-1),
        "dropout": tune.quniform(0.0, 0.5, 0.1),
        "dataset": "digits",
    }
    searcher = SteerageSearcher(metric="score", mode="max", algorithm="paper", count=256,
                                ees_population=10,
                                ees_generations=5)
    assert searcher.set_search_properties(None, None, param_space, num_samples=20) is True
    assert searcher.plan == SearchPlan(initial=7, iter_count=4, iterations=3, final_count=1)
    assert searcher.plan.total == 20
    config = searcher.suggest("t0")
    assert set(config) == {"model", "lr", "dropout", "dataset"}
    assert set(config["model"]) == {"width", "depth"}
    assert config["dataset"] == "digits"
    assert config["model"]["width"] in (16, 32, 64) and 1 <= config["model"]["depth"] <= 3
    assert 1e-4 <= config["lr"] <= 1e-1


def test_budget_rules():
    assert SearchPlan.resolve(budget=100) == SearchPlan(27, 24, 3, 1)
    assert SearchPlan.resolve(budget=100, iter_count=10) == SearchPlan(19, 10, 8, 1)
    assert SearchPlan.resolve(budget=100, iterations=1, final_count=2) == SearchPlan(49, 49, 1, 2)
    searcher = make_searcher(iter_count=None, iterations=None, budget=40)
    assert searcher.plan.total == 40
    # explicit sizes win over Tune's num_samples, which is then only an upper bound
    explicit = make_searcher()
    explicit.set_search_properties(None, None, {}, num_samples=500)
    assert explicit.plan == SearchPlan(6, 6, 2, 1)
    unlimited = SteerageSearcher(small_space(), "val_acc", "max", algorithm="paper", count=512)
    unlimited.set_search_properties(None, None, {}, num_samples=sys.maxsize)  # num_samples=-1
    assert unlimited.plan == SearchPlan(100, 100, 3, 1)
    with pytest.raises(ValueError, match="num_samples"):
        explicit.set_search_properties(None, None, {}, num_samples=10)
    with pytest.raises(ValueError, match="budget"):  # explicit sizes that cannot fit
        SteerageSearcher(small_space(), "val_acc", "max", algorithm="paper", iter_count=6,
                         iterations=2, budget=5)
    # a small budget with free sizes degrades to fewer rounds (Tune runs any budget)
    assert SearchPlan.resolve(budget=5) == SearchPlan(2, 1, 2, 1)
    assert SearchPlan.resolve(budget=1) == SearchPlan(1, 1, 0, 0)


def test_a_preset_name_gives_the_algorithms_own_space():
    default = SteerageSearcher("ffnn", "val_acc", "max")
    paper = SteerageSearcher("ffnn", "val_acc", "max", algorithm="paper")
    assert default.space == ffnn_space(optional_reduction=True).without(["quant_bits"])
    assert paper.space == ffnn_space()


def test_warm_start_points_are_observations_never_proposed():
    searcher = make_searcher()
    warm = searcher.space.sobol(SMALL["count"], 0)[:5]
    for config in warm:
        searcher.add_evaluated_point({**config, "epochs": 3}, accuracy(config))
    searcher.add_evaluated_point(warm[0] | {"num_layers": 1}, float("nan"))
    proposals, running, _ = drive(searcher)
    finish(searcher, running)
    warm_keys = {arch_key(searcher, c) for c in warm}
    assert not warm_keys & {arch_key(searcher, c) for _, c in proposals}
    obs = searcher.observations
    assert (obs["phase"] == "warm_start").sum() == 6
    assert len(proposals) == searcher.plan.total
    with pytest.raises(ValueError, match="neurons_1"):
        searcher.add_evaluated_point({"num_layers": 1}, 0.5)


def test_refit_fraction_starts_next_round_before_stragglers_report():
    searcher = make_searcher(refit_fraction=0.5)
    round0 = [searcher.suggest(f"t{i}") for i in range(6)]
    for i in range(3):  # half of the round
        searcher.on_trial_complete(f"t{i}", {"val_acc": accuracy(round0[i])})
    nxt = searcher.suggest("t6")
    assert isinstance(nxt, dict) and searcher.phase == "iterative"
    for i in range(3, 6):  # stragglers report later and enter the next refit
        searcher.on_trial_complete(f"t{i}", {"val_acc": accuracy(round0[i])})
    searcher.on_trial_complete("t6", {"val_acc": accuracy(nxt)})
    proposals, running, _ = drive(searcher, prefix="u")
    finish(searcher, running)
    obs = searcher.observations
    assert (obs["status"] == "completed").sum() == searcher.plan.total


def test_same_seed_same_proposals_other_seed_differs():
    first, _, _ = drive(make_searcher(seed=3))
    second, _, _ = drive(make_searcher(seed=3))
    other, _, _ = drive(make_searcher(seed=4))
    assert first == second
    assert [c for _, c in first] != [c for _, c in other]


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="maximize"), "mode"),
    (dict(metric=["a", "b"]), "metric"),
    (dict(iter_count=100), "pool"),  # 3 x 100 + 100 > the pool of 128
    (dict(mutation_prob=1.5), "mutation_prob"),
    (dict(refit_fraction=0.0), "refit_fraction"),
    (dict(count=0), "count"),
    (dict(predictor_params={"trees": 5}), "predictor_params"),
    (dict(constraint=lambda config: True), "constraint"),
])
def test_bad_arguments_raise_before_any_trial(kwargs, match):
    arguments = {"metric": "val_acc", "mode": "max", **SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        SteerageSearcher(small_space(), **arguments)


def test_bad_tune_space_and_missing_metric_raise_in_set_search_properties():
    with pytest.raises(ValueError, match="grid_search"):
        SteerageSearcher(metric="m", mode="max").set_search_properties(
            None, None, {"x": tune.grid_search([1, 2]), "y": tune.choice([1, 2])})
    with pytest.raises(ValueError, match="metric"):
        SteerageSearcher(count=64, algorithm="paper", iter_count=4).set_search_properties(
            None, None, {"y": tune.randint(0, 100)})
    with pytest.raises(ValueError, match="mode"):
        SteerageSearcher(metric="m").set_search_properties("m", "best", {"y": tune.randint(0, 9)})
    with pytest.raises(ValueError, match="search space"):
        SteerageSearcher(metric="m", mode="max").suggest("t0")


def test_space_that_does_not_fit_the_dataset_is_rejected():
    iris = load_dataset("iris")  # 4 features: dr_ratio up to 20 leaves k = 0
    with pytest.raises(ValueError, match="n_features=4"):
        check_space_fits(ffnn_space(), "ffnn", iris)
    check_space_fits(ffnn_space(n_features=4), "ffnn", iris)
    with pytest.raises(ValueError, match="image dataset"):
        check_space_fits(small_space(), "lenet", iris)
