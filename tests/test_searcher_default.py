"""SteerageSearcher in its default mode (algorithm="steerage"), driven directly as Tune
would: asynchronous proposals, no duplicates, seeded, restorable, within budget."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from ray.tune.search import Searcher

from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.searchers import GuidedPlan, SteerageSearcher
from steerage_ray.space import Categorical, Integer, SearchSpace, ffnn_space

from searcher_driver import accuracy, drive, finish, small_space


def make_searcher(**overrides) -> SteerageSearcher:
    return SteerageSearcher(small_space(), "val_acc", "max", **{"budget": 30, **overrides})


def keys(searcher, proposals):
    names = searcher.space.names
    return [searcher.space.key({n: config[n] for n in names}) for _, config in proposals]


def test_default_run_never_waits_never_repeats_and_ends_with_the_final_phase():
    searcher = make_searcher(final_count=2, final_config={"epochs": 9})
    proposals, running, waits = drive(searcher, max_in_flight=4)
    finish(searcher, running)
    assert waits == 0  # every free slot got an architecture at once
    assert searcher.plan == GuidedPlan(30, 6, 2) and len(proposals) == 30
    assert len(set(keys(searcher, proposals))) == 30
    assert searcher.suggest("after") == Searcher.FINISHED and searcher.phase == "finished"
    obs = searcher.observations
    phases = obs.groupby("phase").size().to_dict()
    # a design of a fifth of the budget; by then 3 results can fit the ensemble
    assert phases["final"] == 2 and phases["initial"] == 6
    assert phases["guided"] == 28 - phases["initial"]
    assert [config.get("epochs") for _, config in proposals[-3:]] == [None, 9, 9]
    # the guided proposals beat the space-filling design on this smooth objective
    assert obs.query("phase != 'initial'")["metric"].mean() > \
        obs.query("phase == 'initial'")["metric"].mean()
    assert obs["metric"].max() > 0.935


def test_predictions_stay_within_what_was_measured():
    searcher = make_searcher()
    proposals, running, _ = drive(searcher)
    finish(searcher, running)
    obs = searcher.observations
    guided = obs.dropna(subset=["predicted"])
    assert (guided["phase"] != "initial").all()
    assert len(guided) == (obs["phase"] != "initial").sum() >= 24
    assert guided["predicted"].max() <= obs["metric"].max()
    assert guided["predicted"].min() >= obs["metric"].min()
    scores = searcher.round_scores
    assert scores["size"].sum() == 30 and scores["fit_seconds"].iloc[1:].gt(0).all()


@pytest.mark.parametrize("in_flight", [1, 4])
def test_same_seed_same_proposals_other_seed_differs(in_flight):
    """Also with refits running in the background: which model a proposal uses
    depends on the order of events, never on how long a refit took."""
    first, _, _ = drive(make_searcher(seed=5), max_in_flight=in_flight)
    second, _, _ = drive(make_searcher(seed=5), max_in_flight=in_flight)
    other, _, _ = drive(make_searcher(seed=6), max_in_flight=in_flight)
    assert first == second
    assert [c for _, c in first] != [c for _, c in other]


def test_every_fifth_of_the_first_40_guided_proposals_is_the_next_unseen_design_point():
    searcher = make_searcher(budget=60, seed=2)
    proposals, running, _ = drive(searcher, max_in_flight=1)
    finish(searcher, running)
    space, plan = searcher.space, searcher.plan
    strategy = searcher._strategy
    assert (strategy.explore_every, strategy.explore_until, strategy.break_ties) == \
        (5, 40, True)
    assert plan.total - plan.final - plan.initial == 49  # 9 guided past the 40th
    pool = [space.key(config) for config in space.sobol(2048, 2)]
    seen, explored = set(), []
    for position, (_, config) in enumerate(proposals):
        key = space.key({name: config[name] for name in space.names})
        if strategy._exploring(position, plan.phase(position)):
            assert key == next(k for k in pool if k not in seen), position
            explored.append(position - plan.initial)
        seen.add(key)
    assert explored == [4, 9, 14, 19, 24, 29, 34, 39]
    predicted = searcher.observations["predicted"].iloc[plan.initial:]
    assert predicted.notna().all()  # explored points are predicted too (Kendall tau)


@pytest.mark.parametrize("max_concurrent, behind", [(1, 0), (3, 1)])
def test_proposals_wait_for_the_newest_refit_only_at_concurrency_one(max_concurrent, behind):
    """At max_concurrent=1 a proposal uses the model of every result; otherwise the
    model of the results before the newest one, whose refit runs meanwhile."""
    searcher = make_searcher(budget=16)
    searcher.set_max_concurrency(max_concurrent)
    gaps = []
    for i in range(16):
        config = searcher.suggest(f"t{i}")
        fitted = searcher._strategy.fitted
        done = len(searcher.observations.query("status == 'completed'"))
        if fitted is not None and searcher.observations["phase"].iloc[-1] == "guided":
            gaps.append(done - fitted.n)
        searcher.on_trial_complete(f"t{i}", {"val_acc": accuracy(config)})
    # the first guided proposal has no older refit than the newest
    assert len(gaps) >= 8 and set(gaps[1:]) == {behind}


@pytest.mark.parametrize("interrupt_at", [2, 11])
def test_save_restore_mid_run_continues_identically(interrupt_at, tmp_path):
    reference, _, _ = drive(make_searcher(), max_in_flight=1)
    original = make_searcher()
    first, running, _ = drive(original, max_in_flight=1, stop_after=interrupt_at)
    # saved with the newest refit unapplied (lag 1): the restored searcher recomputes it
    assert interrupt_at < 5 or original._strategy.refits.pending
    original.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()
    restored.restore(tmp_path / "searcher.pkl")
    rest, _, _ = drive(restored, max_in_flight=1, running=running, start=interrupt_at)
    assert first + rest == reference


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5])
def test_tiny_budgets_run_every_proposal(budget):
    searcher = make_searcher(budget=budget)
    proposals, running, waits = drive(searcher)
    finish(searcher, running)
    assert len(proposals) == budget == searcher.plan.total and waits == 0
    assert len(set(keys(searcher, proposals))) == budget


def test_a_space_smaller_than_the_budget_is_searched_exhaustively(caplog):
    space = SearchSpace([Categorical("opt", ("adam", "sgd", "rmsprop"))])
    searcher = SteerageSearcher(space, "score", "max", budget=10)
    with caplog.at_level(logging.WARNING, logger="steerage_ray"):
        proposals, running, _ = drive(searcher, objective=lambda c: len(c["opt"]))
    assert sorted(c["opt"] for _, c in proposals) == ["adam", "rmsprop", "sgd"]
    assert searcher.suggest("more") == Searcher.FINISHED
    assert "only 3 distinct architectures" in caplog.text


def test_warm_starts_and_constraints_are_respected():
    space = ffnn_space(n_features=64)
    constraint = ResourceConstraint("ffnn", (64,), 10, max_params=40_000)
    searcher = SteerageSearcher(space, "val_acc", "max", budget=20, constraint=constraint)
    warm = space.sobol(8, 3)
    for config in warm:
        searcher.add_evaluated_point(config, 0.5 + 0.001 * config["neurons_1"])

    def score(config):
        return 0.9 - 0.0001 * abs(config["neurons_1"] - 300)

    proposals, running, _ = drive(searcher, objective=score)
    finish(searcher, running, objective=score)
    assert len(proposals) == 20
    assert not {space.key(c) for c in warm} & set(keys(searcher, proposals))
    assert all(constraint.is_feasible(c) for _, c in proposals)


def test_mode_min_and_failures():
    searcher = SteerageSearcher(small_space(), "loss", "min", budget=24)

    def loss(config):
        return 1.0 - accuracy(config)

    def sabotage(trial_id, result):
        number = int(trial_id[1:])
        if number % 7 == 3:
            return None  # an errored trial
        return {"loss": math.nan} if number % 7 == 5 else result

    proposals, running, _ = drive(searcher, objective=loss, outcome=sabotage)
    finish(searcher, running, objective=loss)
    obs = searcher.observations
    assert len(proposals) == 24 and (obs["status"] == "failed").sum() >= 4
    done = obs.query("status == 'completed'")
    assert done.query("phase != 'initial'")["metric"].mean() < \
        done.query("phase == 'initial'")["metric"].mean()


def test_paper_knobs_need_paper_mode():
    with pytest.raises(ValueError, match="iter_count applies to algorithm='paper'"):
        SteerageSearcher(small_space(), "val_acc", "max", iter_count=10)
    with pytest.raises(ValueError, match="n_initial applies to algorithm='steerage'"):
        SteerageSearcher(small_space(), "val_acc", "max", algorithm="paper", n_initial=3)
    with pytest.raises(ValueError, match="algorithm"):
        SteerageSearcher(small_space(), "val_acc", "max", algorithm="bo")


def test_integer_spaces_with_numpy_values_and_a_big_budget_stay_distinct():
    space = SearchSpace([Integer("a", 0, 5), Integer("b", 0, 5)])  # 36 architectures
    searcher = SteerageSearcher(space, "s", "max", budget=36, seed=np.int64(2))
    proposals, running, _ = drive(searcher, objective=lambda c: -(c["a"] - 2) ** 2 - c["b"])
    assert len(set(keys(searcher, proposals))) == len(proposals) == 36


def _float_accuracy(config: dict) -> float:
    """``accuracy`` without its quant_bits term: the bits change nothing trained."""
    return accuracy({**config, "quant_bits": 0})


def _network(config: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in config.items() if k != "quant_bits"))


def test_inert_dimensions_are_never_searched_and_vary_between_proposals():
    """Searched as a dimension, quant_bits (which changes nothing trained) lets the
    search train the same network once per bit width; left out, never twice."""
    budget, runs = 30, {}
    for inert in ((), ("quant_bits",)):
        searcher = make_searcher(budget=budget, seed=3, inert_dimensions=inert)
        proposals, running, _ = drive(searcher, objective=_float_accuracy)
        finish(searcher, running, objective=_float_accuracy)
        runs[inert] = [config for _, config in proposals]
    searched, left_out = runs[()], runs[("quant_bits",)]
    assert len({_network(c) for c in searched}) < budget  # the waste this prevents
    assert len({_network(c) for c in left_out}) == budget
    assert {c["quant_bits"] for c in left_out} == {8, 16, 32}  # seeded draws, valid values
    again, _, _ = drive(make_searcher(budget=budget, seed=3, inert_dimensions=["quant_bits"]),
                        objective=_float_accuracy)
    assert [c for _, c in again] == left_out[:len(again)]


def test_inert_dimensions_keep_given_values_and_restore_mid_run(tmp_path):
    space = small_space()
    warm = {**space.sobol(1, 9)[0], "quant_bits": 16}
    searcher = make_searcher(budget=12, inert_dimensions=("quant_bits",),
                             points_to_evaluate=[{**warm, "quant_bits": 32}])
    searcher.add_evaluated_point(warm, 0.5)
    obs = searcher.observations
    assert obs["config/quant_bits"].tolist() == [16]
    proposals, running, _ = drive(searcher, objective=_float_accuracy, max_in_flight=1,
                                  stop_after=6)
    # the given point is the warm start's network: it is known, so it is not trained
    assert _network(warm) not in {_network(c) for _, c in proposals}
    searcher.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()
    restored.restore(tmp_path / "searcher.pkl")
    rest, _, _ = drive(restored, objective=_float_accuracy, max_in_flight=1,
                       running=running, start=6)
    reference = make_searcher(budget=12, inert_dimensions=("quant_bits",),
                              points_to_evaluate=[{**warm, "quant_bits": 32}])
    reference.add_evaluated_point(warm, 0.5)
    whole, _, _ = drive(reference, objective=_float_accuracy, max_in_flight=1)
    assert proposals + rest == whole


@pytest.mark.parametrize("inert, options, message", [
    ("quant_bits", {}, "list of distinct dimension names"),
    (["quant_bits", "quant_bits"], {}, "list of distinct dimension names"),
    (["bits"], {}, "'bits' is not a dimension"),
    (["neurons_2"], {}, "'neurons_2' is conditional"),
    (["num_layers"], {}, "decides whether \\['neurons_2', 'neurons_3'\\] are active"),
    (["quant_bits"], {"algorithm": "paper"}, "applies to algorithm='steerage' only"),
])
def test_inert_dimensions_are_checked(inert, options, message):
    with pytest.raises(ValueError, match=message):
        make_searcher(inert_dimensions=inert, **options)


def test_leaving_out_every_dimension_is_refused():
    space = SearchSpace([Integer("a", 0, 3)])
    with pytest.raises(ValueError, match="inert_dimensions: leaving out \\['a'\\] leaves no"):
        SteerageSearcher(space, "s", "max", inert_dimensions=["a"])


def _drive_in_random_order(searcher, order_seed, max_in_flight=3, stop_after=None,
                           proposals=(), running=()):
    """Like ``drive``, but the trial that completes next is drawn at random among those
    in flight (``order_seed``), as on a cluster where trials take different times.
    Returns the proposals (after the given ones), how often the searcher waited with
    a slot free, and the trials still running."""
    searcher.set_max_concurrency(max_in_flight)
    rng = np.random.default_rng(order_seed)
    proposals, running, waits = list(proposals), list(running), 0
    while stop_after is None or len(proposals) < stop_after:
        config = searcher.suggest(f"t{len(proposals)}") \
            if len(running) < max_in_flight else None
        if config == Searcher.FINISHED:
            break
        if config is not None:
            proposals.append(config)
            running.append((f"t{len(proposals) - 1}", config))
            continue
        waits += len(running) < max_in_flight
        if not running:
            break
        trial_id, done = running.pop(int(rng.integers(len(running))))
        searcher.on_trial_complete(trial_id, {"val_acc": accuracy(done)})
    return proposals, waits, running


def test_reproducible_proposals_do_not_depend_on_the_order_trials_finish_in():
    """Asynchronous, the order results arrive in changes the search; reproducible, each
    proposal sees the results its position says, so three orders give one search."""
    runs = {flag: [_drive_in_random_order(make_searcher(seed=4, reproducible=flag), order)
                   for order in range(3)] for flag in (False, True)}
    asynchronous = [proposals for proposals, _, _ in runs[False]]
    reproducible = [proposals for proposals, _, _ in runs[True]]
    assert asynchronous[0] != asynchronous[1] or asynchronous[0] != asynchronous[2]
    assert reproducible[0] == reproducible[1] == reproducible[2]
    assert len(reproducible[0]) == 30
    assert len({tuple(sorted(c.items())) for c in reproducible[0]}) == 30
    assert all(waits == 0 for _, waits, _ in runs[False])


def test_a_reproducible_search_restored_mid_run_is_the_same_search(tmp_path):
    whole, _, _ = _drive_in_random_order(make_searcher(seed=4, reproducible=True), 0)
    original = make_searcher(seed=4, reproducible=True)
    first, _, running = _drive_in_random_order(original, 1, stop_after=14)
    original.save(tmp_path / "searcher.pkl")
    restored = SteerageSearcher()
    restored.restore(tmp_path / "searcher.pkl")
    assert restored._strategy.window == 8  # (3 - 1) + 2 x 3
    resumed, _, _ = _drive_in_random_order(restored, 2, proposals=first, running=running)
    assert resumed == whole


def test_a_reproducible_proposal_waits_only_for_a_trial_older_than_its_window():
    """Concurrency 2: a proposal sees the architectures before the last 2 * 2 + 1; so
    with trial 0 still running, proposals go on until trial 0 falls out of the window
    of one (the first guided one here, since design points need no result)."""
    searcher = make_searcher(budget=20, reproducible=True)
    searcher.set_max_concurrency(2)
    slow = searcher.suggest("t0")
    number, free_waits = 1, 0
    while number < 12:
        config = searcher.suggest(f"t{number}")
        if config is None:
            free_waits += 1
            break
        searcher.on_trial_complete(f"t{number}", {"val_acc": accuracy(config)})
        number += 1
    # the design (4 of 20) needs no result; the first guided proposal (position 4)
    # sees positions before 4 - 5 < 0: nothing to wait for; position 6 sees position 0
    assert searcher._strategy.window == 5 and free_waits == 1 and number == 6
    searcher.on_trial_complete("t0", {"val_acc": accuracy(slow)})
    assert searcher.suggest("t6") is not None


def test_reproducible_is_checked():
    with pytest.raises(ValueError, match="reproducible must be True or False"):
        make_searcher(reproducible="yes")
    with pytest.raises(ValueError, match="remove refit_fraction \\(0.5\\) or set it to 1"):
        make_searcher(algorithm="paper", reproducible=True, refit_fraction=0.5)
    searcher = make_searcher(reproducible=True)  # no concurrency limit from Tune
    with pytest.raises(ValueError, match="max_concurrent_trials"):
        searcher.suggest("t0")
