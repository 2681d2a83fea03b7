"""SteerageSearcher inside real Tune experiments on the session's local Ray (2 CPUs).

global_search trains tiny FFNNs on digits; the other experiments plug the searcher into
user-defined trainables and param spaces the way a Tune user would.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest
from ray import cloudpickle, tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.sample import Domain

from steerage_ray.global_search import SearchInterrupted, global_search, resume_global_search
from steerage_ray.searchers import SteerageSearcher
from steerage_ray.space import Choice, Condition, Float, Integer, SearchSpace, flatten_config

# Ray workers cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEARCH = dict(algorithm="paper", count=64, iter_count=4, iterations=2, ees_population=20, ees_generations=10,
              predictor_params={"n_estimators": 50, "min_child_samples": 2})
TOTAL = 4 + 2 * 4 + 1


def tiny_ffnn_space() -> SearchSpace:
    """Table 2's shape at a scale that trains in a fraction of a second on digits."""
    return SearchSpace([
        Integer("num_layers", 1, 2),
        Integer("neurons_1", 8, 64, step=8),
        Integer("neurons_2", 8, 64, step=8, condition=Condition("num_layers", 2)),
        Integer("dr_method", 1, 5),
        Float("dr_ratio", 1.0, 4.0, step=0.5),
        Choice("quant_bits", (8, 32)),
    ])


def search_digits(tmp_path, name, **overrides):
    options = dict(space=tiny_ffnn_space(), epochs=2, final_epochs=3, seed=0, verbose=0,
                   storage_path=str(tmp_path), name=name, **SEARCH)
    return global_search("digits", "ffnn", **{**options, **overrides})


def architectures(searcher, configs):
    return [searcher.space.key({n: c[n] for n in searcher.space.names}) for c in configs]


@pytest.fixture(scope="module")
def digits_search(ray_session, tmp_path_factory):
    return search_digits(tmp_path_factory.mktemp("steerage"), "full")


@pytest.mark.slow
def test_global_search_trains_every_phase_once_and_finishes(digits_search):
    result = digits_search
    searcher = result.searcher
    assert searcher.phase == "finished"
    assert searcher.suggest("one-more") == "FINISHED"
    trials = result.trials
    assert len(trials) == TOTAL == len(result.result_grid)
    assert trials.groupby("phase").size().to_dict() == {"initial": 4, "iterative": 8,
                                                        "final": 1}
    assert (trials["status"] == "completed").all()
    configs = [r.config for r in result.result_grid]
    keys = architectures(searcher, configs)
    assert len(set(keys)) == TOTAL, "an architecture was trained twice"
    # search trials train 2 epochs, the final EES winner final_epochs = 3
    assert sorted(trials["iterations"]) == [2] * 12 + [3]
    assert result.best_config["epochs"] == 3
    for key in ("val_acc", "test_acc", "quant_test_acc", "params", "flops"):
        assert key in result.best_result, key
    assert result.best_observed_result["val_acc"] == trials["metric"].max()
    assert list(result.round_scores["round"]) == [0, 1, 2, 3]
    assert result.round_scores["fit_seconds"].iloc[1:].notna().all()


@pytest.mark.slow
def test_global_search_returns_the_winners_trained_weights(digits_search):
    from steerage_ray.data import load_dataset, prepare_for_config
    from steerage_ray.models import build_model
    from steerage_ray.training import evaluate

    config = digits_search.best_config
    data = prepare_for_config(load_dataset("digits"), config, seed=config["seed"])
    model = build_model("ffnn", config, data.input_shape, data.n_classes)
    model.load_state_dict(digits_search.best_state_dict)
    accuracy, _ = evaluate(model, data.X_test, data.y_test)
    assert accuracy == digits_search.best_result["test_acc"]


@pytest.mark.slow
def test_ees_winner_is_predicted_at_least_as_good_as_every_trained_architecture(digits_search):
    """EES is seeded with the seen architecture the predictor ranks best and keeps the
    best of parents and children, so the winner's *predicted* accuracy is >= the
    predictor's value for every architecture trained before the final round."""
    searcher = digits_search.searcher
    trained = [searcher.trial(t)["config"] for t in digits_search.trials["trial_id"][:-1]]
    encoded = searcher.space.encode_many(
        [{n: c[n] for n in searcher.space.names} for c in trained])
    assert digits_search.ees_result.best_score >= searcher.predictor.predict(encoded).max()


@pytest.mark.slow
def test_same_seed_proposes_the_same_architectures(digits_search, tmp_path):
    again = search_digits(tmp_path, "again", max_concurrent_trials=1)
    first = [digits_search.searcher.trial(t)["config"] for t in digits_search.trials["trial_id"]]
    second = [again.searcher.trial(t)["config"] for t in again.trials["trial_id"]]
    assert first == second  # same order too: rounds do not depend on completion order
    assert np.allclose(digits_search.trials["metric"], again.trials["metric"])


class InterruptOnce(tune.Callback):
    """Sends Tune's own stop signal after ``after`` trials complete, once per marker file
    (the callback is restored with the experiment, and must not fire again)."""

    def __init__(self, after: int, marker: str):
        self.after, self.marker, self.completed = after, marker, 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed += 1
        if self.completed == self.after and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGUSR1)  # graceful: state is saved, fit returns


@pytest.mark.slow
def test_interrupted_search_resumes_and_trains_no_architecture_twice(ray_session, tmp_path):
    marker = str(tmp_path / "interrupted")
    with pytest.raises(SearchInterrupted) as interrupted:
        search_digits(tmp_path, "resume", max_concurrent_trials=2,
                      callbacks=[InterruptOnce(5, marker)])
    assert os.path.exists(marker)
    stopped = interrupted.value
    assert 5 <= stopped.done < stopped.planned == TOTAL
    assert f"after {stopped.done} of {TOTAL} trials" in str(stopped)
    saved = SteerageSearcher()
    saved.restore_from_dir(stopped.experiment_path)
    assert saved.phase != "finished"
    done_before = set(saved.observations.query("status == 'completed'")["trial_id"])
    assert 5 <= len(done_before) < TOTAL

    resumed = resume_global_search(stopped.experiment_path, "digits")
    assert resumed.searcher.phase == "finished"
    trials = resumed.trials
    assert len(trials) == TOTAL and (trials["status"] == "completed").all()
    assert done_before <= set(trials["trial_id"])  # finished trials were kept, not rerun
    configs = [r.config for r in resumed.result_grid]
    assert len(configs) == TOTAL
    assert len(set(architectures(resumed.searcher, configs))) == TOTAL


def user_trainable(config):
    """A user's own trainable: logs what it received, reports a synthetic score."""
    flat = flatten_config(config)
    with open(os.path.join(config["log_dir"], f"{uuid.uuid4().hex}.json"), "w") as file:
        json.dump({"config": config, "plain": not any(isinstance(v, Domain)
                                                      for v in flat.values())}, file)
    score = (1.0 - abs(config["model"]["width"] - 32) / 100 - config["dropout"]
             - abs(math.log10(config["lr"]) + 2) / 10)
    tune.report({"score": score})


def user_param_space(log_dir) -> dict:
    return {
        "model": {"width": tune.choice([16, 32, 64]), "depth": tune.randint(1, 4)},
        "dropout": tune.quniform(0.0, 0.5, 0.1),
        "lr": tune.loguniform(1e-4, 1e-1),
        "log_dir": str(log_dir),
    }


@pytest.mark.slow
def test_plugs_into_a_user_experiment_with_its_own_param_space(ray_session, tmp_path):
    searcher = SteerageSearcher(count=128, ees_population=10, ees_generations=5, seed=1)
    grid = tune.Tuner(
        user_trainable, param_space=user_param_space(tmp_path),
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode="max",
                                    num_samples=16, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="user", verbose=0),
    ).fit()
    assert searcher.phase == "finished" and searcher.plan.total == 16
    assert len(grid) == 16 and grid.num_errors == 0
    logged = [json.load(open(tmp_path / name)) for name in os.listdir(tmp_path)
              if name.endswith(".json")]
    assert len(logged) == 16
    for entry in logged:
        config = entry["config"]
        assert entry["plain"]
        assert set(config) == {"model", "dropout", "lr", "log_dir"}
        assert set(config["model"]) == {"width", "depth"}
        assert config["model"]["width"] in (16, 32, 64) and 1 <= config["model"]["depth"] <= 3
        assert 1e-4 <= config["lr"] <= 1e-1 and config["log_dir"] == str(tmp_path)
    assert "phase" not in logged[0]["config"]  # phase info stays in the searcher
    assert searcher.observations["phase"].tolist()[-1] == "final"


def timed_trainable(config):
    start = time.time()
    time.sleep(3.0)  # long enough to overlap with the next trial on a loaded machine
    with open(os.path.join(config["log_dir"], f"{uuid.uuid4().hex}.span"), "w") as file:
        file.write(f"{start} {time.time()}")
    tune.report({"score": float(config["x"])})


@pytest.mark.slow
def test_max_concurrent_trials_two_runs_two_at_once_never_more(ray_session, tmp_path):
    searcher = SteerageSearcher(algorithm="paper", count=64, iter_count=2, iterations=1,
                                final_count=2, ees_population=10, ees_generations=5)
    tune.Tuner(
        tune.with_resources(timed_trainable, {"cpu": 0.5}),  # room for 4 at once
        param_space={"x": tune.randint(0, 100), "log_dir": str(tmp_path)},
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode="max",
                                    num_samples=-1, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="conc", verbose=0),
    ).fit()
    spans = [tuple(map(float, open(tmp_path / n).read().split()))
             for n in os.listdir(tmp_path) if n.endswith(".span")]
    assert len(spans) == 6 == searcher.plan.total
    in_flight = [sum(start <= t < end for start, end in spans) for t, _ in spans]
    assert max(in_flight) == 2


def flaky_trainable(config):
    if config["x"] % 3 == 0:
        raise RuntimeError("this architecture does not fit in memory")
    tune.report({"score": float("nan") if config["x"] % 3 == 1 else float(config["x"])})


@pytest.mark.slow
def test_errored_and_nan_trials_are_counted_and_do_not_stop_the_search(ray_session, tmp_path):
    searcher = SteerageSearcher(count=64, ees_population=10, ees_generations=5)
    grid = tune.Tuner(
        flaky_trainable, param_space={"x": tune.randint(0, 60)},
        tune_config=tune.TuneConfig(search_alg=searcher, metric="score", mode="max",
                                    num_samples=14, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="flaky", verbose=0),
    ).fit()
    obs = searcher.observations
    assert searcher.phase == "finished" and len(obs) == 14 == len(grid)
    raised = obs["config/x"] % 3 == 0
    nan = obs["config/x"] % 3 == 1
    assert grid.num_errors == raised.sum() > 0 and nan.sum() > 0
    assert (obs.loc[raised | nan, "status"] == "failed").all()
    assert (obs.loc[~(raised | nan), "status"] == "completed").all()


def curve_trainable(config):
    """Validation accuracy rises then falls; ASHA stops some trials early."""
    for step in range(1, 9):
        tune.report({"acc": config["x"] / 100 * (1 - abs(step - 3) / 10)})


@pytest.mark.slow
def test_asha_stopped_trials_are_labelled_with_their_best_report(ray_session, tmp_path):
    searcher = SteerageSearcher(count=64, ees_population=10, ees_generations=5)
    tune.Tuner(
        curve_trainable, param_space={"x": tune.randint(1, 100)},
        tune_config=tune.TuneConfig(
            search_alg=searcher, metric="acc", mode="max", num_samples=14,
            scheduler=ASHAScheduler(max_t=8, grace_period=1, reduction_factor=2),
            reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="asha", verbose=0),
    ).fit()
    obs = searcher.observations
    assert len(obs) == 14 and searcher.phase == "finished"
    assert (obs["iterations"] < 8).any()  # ASHA stopped some trials
    best_possible = obs["config/x"] / 100 * (1 - np.abs(np.minimum(obs["iterations"], 3) - 3) / 10)
    assert np.allclose(obs["metric"], best_possible)  # the best value each one reported


class StopAtFirstReport(FIFOScheduler):
    """A real Tune scheduler that stops every trial at its first report."""

    def on_trial_result(self, tune_controller, trial, result):
        return self.STOP


@pytest.mark.slow
def test_a_scheduler_never_stops_the_final_phase(ray_session, tmp_path):
    result = search_digits(tmp_path, "sparing", scheduler=StopAtFirstReport())
    trials = result.trials.set_index("phase")
    assert len(trials) == TOTAL and (trials["status"] == "completed").all()
    assert (trials.drop(index="final")["iterations"] == 1).all()  # every other one stopped
    assert trials.loc["final", "iterations"] == 3  # final_epochs: trained to its end
    assert "test_acc" in result.best_result  # only a trial's last report has it
    assert result.best_config["search_phase"] == "final"


GPU_SCRIPT = textwrap.dedent("""
    import json, sys
    import ray
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    sys.path.insert(0, sys.argv[2])
    from test_searcher_tune import tiny_ffnn_space
    from steerage_ray.global_search import global_search
    result = global_search(
        "digits", "ffnn", space=tiny_ffnn_space(), gpus_per_trial=0.5, epochs=1,
        algorithm="paper", count=32, iter_count=2, iterations=1, ees_population=10,
        ees_generations=5,
        storage_path=sys.argv[1], name="gpu", verbose=0)
    print("RESULT" + json.dumps({
        "status": result.trials["status"].tolist(),
        "on_gpu": result.trials["on_gpu"].tolist(),
        "gpus_assigned": result.trials["gpus_assigned"].tolist()}))
    ray.shutdown()
""")


@pytest.mark.slow
def test_gpu_trials_on_fake_gpus_schedule_and_train_on_the_cpu(tmp_path):
    """A separate Ray (own process) with one fake GPU: trials asking for half a GPU are
    scheduled on it, and train on the CPU because torch sees no CUDA device."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", GPU_SCRIPT, str(tmp_path), os.path.dirname(__file__)],
        capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stderr[-3000:]
    outcome = json.loads(lines[0][len("RESULT"):])
    assert outcome["status"] == ["completed"] * 5
    assert outcome["gpus_assigned"] == [1] * 5
    assert outcome["on_gpu"] == [False] * 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(family="mlp"), "family"),
    (dict(family="lenet"), "image dataset"),
    (dict(training={"learning_rate": 0.1}), "learning_rate"),
    (dict(algorithm="paper", iter_count=100, count=64), "pool"),
    (dict(iter_count=100), "iter_count applies to algorithm='paper'"),
    (dict(budget=0), "budget"),
    (dict(scheduler="asha"), "scheduler must be a Tune TrialScheduler"),
])
def test_global_search_rejects_bad_input_before_any_trial(kwargs, match):
    with pytest.raises(ValueError, match=match):
        global_search("iris", **{"family": "ffnn", **kwargs})
