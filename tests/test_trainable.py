"""train_architecture in real Tune trials on digits (slow): reports, checkpoint resume,
divergence, threads, patience; and the argument checks (quick)."""

from __future__ import annotations

import sys

import pytest
from ray import cloudpickle, tune

from steerage_ray.data import load_dataset_spec
from steerage_ray.trainables import make_trainable, train_architecture, with_resources

# Ray workers cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ARCH = {"family": "ffnn", "num_layers": 2, "neurons_1": 32, "neurons_2": 16,
        "dr_method": 5, "dr_ratio": 2.0, "quant_bits": 8, "seed": 0, "batch_size": 64}


class Recorder(tune.Callback):
    """Keeps every result the driver receives, per trial, in order."""

    def __init__(self):
        self.results: dict[str, list[dict]] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.setdefault(trial.trial_id, []).append(result)


def run(trainable, config, tmp_path, name, max_failures=0):
    recorder = Recorder()
    grid = tune.Tuner(
        trainable, param_space=config,
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", num_samples=1),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=[recorder],
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    ).fit()
    assert grid.num_errors == 0
    (results,) = recorder.results.values()
    return results


@pytest.fixture(scope="module")
def digits_trainable():
    return make_trainable("digits", cpus_per_trial=1)


@pytest.mark.slow
@pytest.mark.slow
def test_reports_every_epoch_then_final_scores_in_the_last_report(
        ray_session, digits_trainable, tmp_path):
    results = run(digits_trainable, {**ARCH, "epochs": 3}, tmp_path, "epochs")
    assert [r["training_iteration"] for r in results] == [1, 2, 3]  # one report per epoch
    assert [r["epoch"] for r in results] == [1, 2, 3]
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in results)
    final = results[-1]
    for key in ("test_acc", "quant_test_acc", "params", "flops", "input_features"):
        assert key in final, key
    assert "test_acc" not in results[0]
    assert final["input_features"] == 32  # 64 digits features / dr_ratio 2
    assert final["params"] == 32 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert final["quant_bits"] == 8 and final["diverged"] is False
    assert final["val_acc"] >= max(r["val_acc"] for r in results[:-1])  # best weights
    assert final["torch_threads"] == 1  # the trial's CPUs
    assert final["on_gpu"] is False and final["gpus_assigned"] == 0


@pytest.mark.slow
def test_the_last_checkpoint_holds_the_reported_weights(ray_session, tmp_path):
    import torch

    from steerage_ray.data import prepare_for_config
    from steerage_ray.models import build_model
    from steerage_ray.trainables import load_checkpoint_state
    from steerage_ray.training import evaluate

    dataset = load_dataset_spec("digits")
    grid = tune.Tuner(
        make_trainable(dataset), param_space={**ARCH, "epochs": 3},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", num_samples=1),
        run_config=tune.RunConfig(name="weights", storage_path=str(tmp_path), verbose=0),
    ).fit()
    (result,) = list(grid)
    state = load_checkpoint_state(result.checkpoint)
    assert state["epoch"] == 3
    data = prepare_for_config(dataset, ARCH, seed=0)
    model = build_model("ffnn", ARCH, data.input_shape, data.n_classes)
    model.load_state_dict(state["best_model"])
    assert evaluate(model, data.X_test, data.y_test)[0] == result.metrics["test_acc"]
    assert evaluate(model, data.X_val, data.y_val)[0] == result.metrics["val_acc"]
    model.load_state_dict(state["model"])  # the last epoch's weights, for resuming
    assert evaluate(model, data.X_val, data.y_val)[0] == result.metrics["last_val_acc"]
    assert isinstance(state["optimizer"], dict) and torch.is_tensor(
        next(iter(state["best_model"].values())))


def crash_once(config, dataset=None):
    """Train 2 of the epochs, then fail; the retry must resume from the checkpoint."""
    if tune.get_checkpoint() is None:
        train_architecture({**config, "epochs": 2}, dataset=dataset)
        raise RuntimeError("simulated node failure after the first checkpoint")
    train_architecture(config, dataset=dataset)


@pytest.mark.slow
@pytest.mark.slow
def test_a_failed_trial_resumes_from_its_checkpoint_with_identical_training(
        ray_session, tmp_path):
    dataset = load_dataset_spec("digits")
    uninterrupted = run(make_trainable(dataset), {**ARCH, "epochs": 4}, tmp_path, "straight")
    resumed = run(tune.with_parameters(crash_once, dataset=dataset), {**ARCH, "epochs": 4},
                  tmp_path, "crash", max_failures=1)
    epochs = [r["epoch"] for r in resumed]
    assert epochs == [1, 2, 3, 4]  # the retry starts after the last checkpoint (epoch 2)
    # Same weights, optimizer state and batch order: the resumed epochs are bit-identical.
    assert [r["last_val_acc"] for r in resumed[2:]] == \
        [r["last_val_acc"] for r in uninterrupted[2:]]


@pytest.mark.slow
def test_a_diverging_model_reports_zero_accuracy_and_diverged(ray_session, digits_trainable,
                                                                tmp_path):
    results = run(digits_trainable, {**ARCH, "epochs": 3, "lr": 1e12, "optimizer": "sgd"},
                  tmp_path, "diverge")
    final = results[-1]
    assert final["diverged"] is True
    assert final["val_acc"] == 0.0


@pytest.mark.slow
def test_dataset_from_the_config_and_patience(ray_session, tmp_path):
    config = {**ARCH, "dataset": {"name": "digits", "seed": 1}, "epochs": 30, "patience": 1,
              "lr": 0.05}
    results = run(with_resources(train_architecture, 1, 0), config, tmp_path, "spec")
    final = results[-1]
    assert final["stop_reason"] == "early_stopping"  # seeded: it stops the same way each run
    assert final["epoch"] < 30
    assert len(results) == final["epoch"]  # the early-stopped epoch is the last report
    # patience 1: training stopped at the first epoch that did not beat the best so far
    assert final["last_val_acc"] <= max(r["val_acc"] for r in results[:-1])
    assert all(results[i]["val_acc"] > max(r["val_acc"] for r in results[:i])
               for i in range(1, len(results) - 1))


def test_a_config_without_a_family_fails_before_training():
    with pytest.raises(ValueError, match="family"):
        train_architecture({"dataset": "digits"})
    with pytest.raises(ValueError, match="family"):
        train_architecture({"dataset": "digits", "family": "transformer"})
    with pytest.raises(ValueError, match="dataset"):
        train_architecture({"family": "ffnn"})


def test_checkpoint_seconds_are_checked():
    with pytest.raises(ValueError, match="checkpoint_seconds"):
        make_trainable("digits", checkpoint_seconds=-1)


@pytest.mark.parametrize("cpus, gpus, match", [
    (-1, 0, "cpus_per_trial"), (1, "one", "gpus_per_trial"), (0, 0, "both be 0")])
def test_resources_are_checked(cpus, gpus, match):
    with pytest.raises(ValueError, match=match):
        with_resources(train_architecture, cpus, gpus)


def test_fractional_gpus_are_accepted():
    trainable = with_resources(train_architecture, 0.5, 0.25)
    assert trainable._resources.required_resources == {"CPU": 0.5, "GPU": 0.25}
