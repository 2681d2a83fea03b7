"""SteerageSearcher behaves like Tune's built-in searchers (OptunaSearch, HyperOptSearch)
in the situations where it used to differ: restore without the unfinished trials, small
and odd budgets, tiny spaces, Repeater, points_to_evaluate, list-valued choices and the
default plan. Real Tuners on the session's local Ray."""

from __future__ import annotations

import glob
import json
import logging
import os
import signal
import sys
import time

import pytest
from ray import cloudpickle, tune
from ray.tune.search import Repeater, Searcher

from steerage_ray.searchers import SteerageSearcher
from steerage_ray.searchers import steerage as searcher_module

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow


def quadratic(config):
    tune.report({"score": -(config["x"] - 7) ** 2 - 0.1 * config["y"]})


SPACE = {"x": tune.randint(0, 20), "y": tune.randint(0, 10)}


def run(tmp_path, searcher, name, num_samples, param_space=SPACE, trainable=quadratic,
        **tune_config):
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode="max",
                                    num_samples=num_samples, **tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0),
    ).fit()


def slow_quadratic(config):
    time.sleep(config.get("sleep", 0.0))
    quadratic(config)


class StopAfter(tune.Callback):
    """Tune's own graceful stop (state saved, fit returns) after ``after`` trials, once:
    the callback is restored with the experiment, so a marker file keeps it quiet then."""

    def __init__(self, after: int, marker: str):
        self.after, self.marker, self.done = after, marker, 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        if self.done == self.after and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGUSR1)


RESUMABLE = tune.with_resources(slow_quadratic, {"cpu": 0.5})


def interrupted_run(tmp_path, name):
    """8 trials (3 at a time) stopped gracefully after 3 completed: the experiment's
    path and the searcher as Tune saved it, with at least one trial in flight."""
    tune.Tuner(
        RESUMABLE, param_space={**SPACE, "sleep": 0.5},
        tune_config=tune.TuneConfig(search_alg=SteerageSearcher(seed=0), metric="score",
                                    mode="max", num_samples=8, max_concurrent_trials=3),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0,
                                  callbacks=[StopAfter(3, str(tmp_path / "stopped"))])).fit()
    path = str(tmp_path / name)
    interrupted = SteerageSearcher()  # plan sized by num_samples
    interrupted.restore_from_dir(path)
    assert interrupted.in_flight, "no trial was in flight at the interruption"
    return path, interrupted


def resume(path, resume_unfinished):
    """Finish the run within a minute; the (x, y) of its completed trials, in order."""
    started = time.monotonic()
    grid = tune.Tuner.restore(path, RESUMABLE, resume_unfinished=resume_unfinished).fit()
    assert time.monotonic() - started < 60
    restored = SteerageSearcher()
    restored.restore_from_dir(grid.experiment_path)
    assert restored.phase == "finished" and not restored.in_flight
    obs = restored.observations
    assert obs["phase"].iloc[-1] == "final"
    done = obs[obs["status"] == "completed"]
    return list(zip(done["config/x"], done["config/y"]))


def test_restore_without_unfinished_trials_reproposes_them_and_finishes(ray_session,
                                                                       tmp_path):
    path, interrupted = interrupted_run(tmp_path, "drop")
    lost = {(r["config"]["x"], r["config"]["y"])
            for r in map(interrupted.trial, interrupted.in_flight)}
    trained = resume(path, resume_unfinished=False)
    assert lost <= set(trained)  # every dropped architecture was proposed again and trained
    # Tune counted the dropped trials against num_samples=8; the plan gave way to them
    assert len(set(trained)) == len(trained) == 8 - len(lost)


def test_a_trial_missing_from_tunes_saved_state_is_proposed_again_at_once(
        ray_session, tmp_path, monkeypatch):
    """A driver killed while Tune saves can leave the searcher's state holding a trial
    that Tune's trial list does not: made here by taking one trial in flight out of
    Tune's saved list after a graceful stop. Resumed with every unfinished trial, the
    run must not wait out the grace period for it (600 s here, as global_search's
    resume sets it)."""
    monkeypatch.setattr(searcher_module, "RESTORE_GRACE_S", 600.0)
    path, interrupted = interrupted_run(tmp_path, "torn")
    missing = interrupted.in_flight[0]
    state_file = sorted(glob.glob(os.path.join(path, "experiment_state-*.json")))[-1]
    with open(state_file) as file:
        state = json.load(file)
    state["trial_data"] = [pair for pair in state["trial_data"]
                           if json.loads(pair[0])["trial_id"] != missing]
    with open(state_file, "w") as file:
        json.dump(state, file)
    lost = interrupted.trial(missing)["config"]
    trained = resume(path, resume_unfinished=True)
    assert trained.count((lost["x"], lost["y"])) == 1  # proposed again, trained once
    assert len(set(trained)) == len(trained) == 7  # Tune counted the lost trial: 8 - 1


def test_a_trial_tune_counted_but_never_saved_costs_one_proposal_not_the_run(ray_session,
                                                                             tmp_path):
    """The other torn save: Tune's generator counted a trial that neither its trial list
    nor the searcher's state holds (made here by raising the saved count by one). Tune
    then starts one trial fewer than the plan needs; the plan gives way at the restore,
    so the search still completes, its final phase included."""
    path, _ = interrupted_run(tmp_path, "uncounted")
    state_file = sorted(glob.glob(os.path.join(path, "search_gen_state-*.json")))[-1]
    with open(state_file, "rb") as file:
        state = cloudpickle.load(file)
    state["counter"] += 1
    with open(state_file, "wb") as file:
        cloudpickle.dump(state, file)
    trained = resume(path, resume_unfinished=True)
    assert len(set(trained)) == len(trained) == 7  # 8 counted, one of them trains nothing


@pytest.mark.parametrize("num_samples", [1, 4, 5])
def test_any_budget_runs_every_trial(ray_session, tmp_path, num_samples):
    searcher = SteerageSearcher(seed=1)
    grid = run(tmp_path, searcher, f"small{num_samples}", num_samples)
    assert len(grid) == num_samples and grid.num_errors == 0
    assert searcher.plan.total == num_samples and searcher.phase in ("finished", "final",
                                                                       "guided", "initial")
    assert len(searcher.observations) == num_samples


def test_warm_start_pattern_two_tuners_with_save_and_restore(ray_session, tmp_path):
    first = SteerageSearcher(seed=2)
    run(tmp_path, first, "warm1", 5)
    first.save(str(tmp_path / "searcher.pkl"))
    second = SteerageSearcher()
    second.restore(str(tmp_path / "searcher.pkl"))
    grid = run(tmp_path, second, "warm2", 5)
    assert len(grid) == 5 and grid.num_errors == 0
    obs = second.observations
    assert (obs["phase"] == "warm_start").sum() == 5
    assert len(obs) == 10 == obs[["config/x", "config/y"]].drop_duplicates().shape[0]


@pytest.mark.parametrize("algorithm", ["steerage", "paper"])
def test_a_space_smaller_than_the_plan_is_searched_exhaustively(ray_session, tmp_path,
                                                                caplog, algorithm):
    searcher = SteerageSearcher(algorithm=algorithm)
    with caplog.at_level(logging.WARNING, logger="steerage_ray"):
        grid = run(tmp_path, searcher, f"tiny-{algorithm}", 10,
                   param_space={"x": tune.choice([3, 7, 11]), "y": 0})
    assert sorted(result.config["x"] for result in grid) == [3, 7, 11]
    assert searcher.suggest("more") == Searcher.FINISHED
    assert "only 3 distinct architectures" in caplog.text


def test_repeater_plans_the_distinct_suggestions_and_finishes_every_phase(ray_session,
                                                                          tmp_path):
    searcher = SteerageSearcher(seed=3, final_config={"final": True})
    grid = run(tmp_path, Repeater(searcher, repeat=2), "repeat", 16)
    assert len(grid) == 16
    assert searcher.plan.total == 8 and searcher.phase == "finished"
    obs = searcher.observations
    assert len(obs) == 8 and (obs["status"] == "completed").all()
    assert obs["phase"].iloc[-1] == "final"
    assert sum(1 for result in grid if result.config.get("final")) == 2  # both repeats


def test_points_to_evaluate_come_first_and_rewarded_points_are_not_trained(ray_session,
                                                                           tmp_path):
    searcher = SteerageSearcher(points_to_evaluate=[{"x": 7, "y": 0}, {"x": 1}], seed=4)
    grid = run(tmp_path, searcher, "points", 6, max_concurrent_trials=1)
    obs = searcher.observations
    assert obs["phase"].tolist()[:2] == ["given", "given"]
    assert (obs["config/x"].tolist()[:2], obs["config/y"].iloc[0]) == ([7, 1], 0)
    assert len(grid) == 6

    rewarded = SteerageSearcher(points_to_evaluate=[{"x": 7, "y": 0}, {"x": 1, "y": 5}],
                                evaluated_rewards=[0.0, -36.5], seed=4)
    grid = run(tmp_path, rewarded, "rewarded", 4)
    trained = {(r.config["x"], r.config["y"]) for r in grid}
    assert len(grid) == 4 and not trained & {(7, 0), (1, 5)}
    assert (rewarded.observations["phase"] == "warm_start").sum() == 2


def list_trainable(config):
    assert isinstance(config["layers"], list), config
    tune.report({"score": float(sum(config["layers"]))})


def test_choices_over_lists_are_accepted_and_handed_back_as_lists(ray_session, tmp_path):
    searcher = SteerageSearcher(seed=5)
    grid = run(tmp_path, searcher, "lists", 4, trainable=list_trainable,
               param_space={"layers": tune.choice([[16, 16], [32, 32], [64]])})
    assert grid.num_errors == 0
    assert sorted(map(tuple, (r.config["layers"] for r in grid))) == [(16, 16), (32, 32),
                                                                      (64,)]


def test_the_default_plan_is_logged_when_num_samples_is_minus_one(caplog):
    searcher = SteerageSearcher(seed=6)  # a space of more than 401 architectures
    space = {"x": tune.randint(0, 30), "y": tune.randint(0, 30)}
    searcher.set_search_properties("score", "max", space, num_samples=sys.maxsize)
    with caplog.at_level(logging.INFO, logger="steerage_ray"):
        searcher.suggest("t0")
    assert searcher.plan.total == 401
    assert "401 trials planned from no budget and num_samples=-1" in caplog.text
