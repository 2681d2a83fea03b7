"""The train/evaluate loop: real PyTorch training on scikit-learn's digits."""

import math
import os
import subprocess
import sys
import time

import pytest
import torch

from steerage_ray.data import load_dataset
from steerage_ray.models import build_ffnn, build_lenet, count_params
from steerage_ray.training import (
    CONFIG_KEYS,
    TrainSettings,
    evaluate,
    select_device,
    settings_for,
    settings_from,
    train_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mlp(seed: int = 0, hidden=(128, 128)) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_ffnn(64, list(hidden), 10)


def test_baseline_mlp_reaches_95_percent_on_digits_in_seconds(digits):
    settings = settings_for("digits", epochs=25)
    started = time.perf_counter()
    result = train_model(mlp(), digits, settings)
    seconds = time.perf_counter() - started
    print(f"digits MLP 64-128-128-10, 25 epochs: {seconds:.2f} s, test acc {result.test_acc:.4f}")
    assert result.test_acc >= 0.95
    assert result.epochs_run == 25 and len(result.history) == 25
    assert result.stop_reason == "completed" and not result.diverged
    assert seconds < 30  # generous: a few seconds on one shared core


def test_training_is_deterministic_per_seed(digits):
    settings = settings_for("digits", epochs=4, seed=3)
    first_model, second_model = mlp(), mlp()
    first = train_model(first_model, digits, settings)
    second = train_model(second_model, digits, settings)
    assert first.history == second.history
    assert all(torch.equal(a, b) for a, b in
               zip(first_model.state_dict().values(), second_model.state_dict().values()))
    other = train_model(mlp(), digits, settings_for("digits", epochs=4, seed=4))
    assert other.history != first.history  # the seed drives the shuffling


def test_training_does_not_touch_the_callers_rng(digits):
    state = torch.random.get_rng_state()
    train_model(mlp(), digits, settings_for("digits", epochs=1))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_on_epoch_is_called_once_per_epoch_with_the_live_model(digits):
    seen = []

    def on_epoch(result):
        seen.append((result.epoch, result.val_acc, result.best_val_acc))
        assert isinstance(result.model, torch.nn.Module)
        assert isinstance(result.optimizer, torch.optim.Optimizer)

    result = train_model(mlp(), digits, settings_for("digits", epochs=3), on_epoch=on_epoch)
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2]
    assert [acc for _, acc, _ in seen] == [h["val_acc"] for h in result.history]
    assert seen[-1][2] == result.best_val_acc == max(acc for _, acc, _ in seen)


def test_on_epoch_returning_true_stops_training(digits):
    calls = []
    result = train_model(mlp(), digits, settings_for("digits", epochs=10),
                         on_epoch=lambda r: calls.append(r.epoch) or r.epoch == 1)
    assert calls == [0, 1]
    assert result.epochs_run == 2 and result.stop_reason == "callback"


def test_early_stopping_restores_the_best_weights(digits):
    settings = settings_for("digits", epochs=40, patience=2, lr=0.03)
    model = mlp()
    result = train_model(model, digits, settings)
    assert result.stop_reason == "early_stopping"
    assert result.epochs_run == result.best_epoch + 3 < 40
    assert result.best_val_acc == max(h["val_acc"] for h in result.history)
    val_acc, _ = evaluate(model, digits.X_val, digits.y_val)
    assert val_acc == result.best_val_acc
    assert result.test_acc == evaluate(model, digits.X_test, digits.y_test)[0]


def test_on_epoch_knows_which_epoch_is_the_last(digits):
    finals = []
    settings = settings_for("digits", epochs=40, patience=2, lr=0.03)
    result = train_model(mlp(), digits, settings, on_epoch=lambda r: finals.append(r.final))
    assert result.stop_reason == "early_stopping"
    assert finals == [False] * (result.epochs_run - 1) + [True]  # patience ran out
    finals.clear()
    train_model(mlp(), digits, settings_for("digits", epochs=3),
                on_epoch=lambda r: finals.append(r.final))
    assert finals == [False, False, True]  # the last of the epochs
    assert "final" not in result.history[0]


def test_after_step_runs_after_every_step_and_can_keep_a_mask(digits):
    model = mlp(hidden=(32,))
    mask = torch.rand_like(model[0].weight) < 0.5
    steps = []

    def apply_mask(m):
        steps.append(1)
        with torch.no_grad():
            m[0].weight.mul_(mask)

    settings = settings_for("digits", epochs=2, batch_size=100)
    train_model(model, digits, settings, after_step=apply_mask)
    assert len(steps) == 2 * math.ceil(len(digits.y_train) / 100)
    assert torch.all(model[0].weight[~mask] == 0)
    assert count_params(model) == (
        int(mask.sum()) + sum(p.numel() for p in model.parameters()) - mask.numel())


def test_divergence_is_reported_not_raised(digits):
    settings = TrainSettings(epochs=5, optimizer="sgd", lr=1e30)
    model = mlp()
    result = train_model(model, digits, settings)
    assert result.diverged and result.stop_reason == "diverged"
    assert result.best_epoch is None and result.epochs_run == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())  # initial weights back
    assert 0.0 <= result.test_acc <= 1.0
    assert result.best_val_acc == evaluate(model, digits.X_val, digits.y_val)[0]


def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run(digits):
    settings = settings_for("digits", epochs=4, restore_best=False, schedule="cosine")
    full = train_model(mlp(), digits, settings)

    model = mlp()
    first = train_model(model, digits, settings, on_epoch=lambda r: r.epoch == 1)
    rest = train_model(model, digits, settings, start_epoch=2,
                       optimizer_state=first.optimizer_state)
    assert first.history + rest.history == full.history


def test_cosine_schedule_anneals_the_learning_rate(digits):
    settings = settings_for("cifar10", epochs=4)
    assert settings.schedule == "cosine"
    assert [settings.lr_at(e) for e in range(4)] == pytest.approx(
        [0.1, 0.05 * (1 + math.cos(math.pi / 4)), 0.05, 0.05 * (1 + math.cos(3 * math.pi / 4))])
    result = train_model(mlp(), digits, settings_for("digits", epochs=2, schedule="cosine"))
    assert [h["lr"] for h in result.history] == [0.01, 0.005]


def test_trains_a_cnn_on_images(digits):
    images = load_dataset("digits_images")
    torch.manual_seed(0)
    model = build_lenet(1, 8, 10, conv_filters=(6, 16), kernel_size=3, fc_sizes=(64,))
    result = train_model(model, images, settings_for("digits_images", family="lenet", epochs=3))
    assert result.test_acc > 0.5  # 10 classes: chance is 0.1


def test_evaluate_restores_the_training_flag_and_checks_its_input(digits):
    model = mlp()
    model.train()
    accuracy, loss = evaluate(model, digits.X_test, digits.y_test, device="cpu", batch_size=7)
    assert model.training
    assert 0.0 <= accuracy <= 1.0 and loss > 0
    assert (accuracy, loss) == pytest.approx(evaluate(model, digits.X_test, digits.y_test))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, digits.X_test, digits.y_test, batch_size=0)


def test_num_threads_applies_during_training_only(digits):
    threads = []
    settings = settings_for("digits", epochs=1, num_threads=2)
    train_model(mlp(), digits, settings, on_epoch=lambda r: threads.append(torch.get_num_threads()))
    assert threads == [2]
    assert torch.get_num_threads() == 1


def test_settings_for_follows_the_paper():
    tabular = settings_for("breast_cancer")
    assert (tabular.optimizer, tabular.lr, tabular.weight_decay) == ("adam", 0.01, 1e-3)
    ffnn = settings_for("MNIST", family="ffnn")
    assert (ffnn.optimizer, ffnn.lr, ffnn.momentum, ffnn.weight_decay) == ("sgd", 0.01, 0.9, 1e-4)
    lenet = settings_for("fashion-mnist", family="lenet")
    assert (lenet.optimizer, lenet.lr, lenet.momentum, lenet.weight_decay) == (
        "sgd", 0.001, 0.9, 1e-4)
    resnet = settings_for("cifar10", family="resnet")
    assert (resnet.optimizer, resnet.lr, resnet.momentum, resnet.weight_decay,
            resnet.schedule, resnet.epochs) == ("sgd", 0.1, 0.9, 5e-4, "cosine", 200)
    assert settings_for("digits", epochs=3, patience=1).epochs == 3


def test_config_keys_are_the_settings_a_config_may_set():
    assert CONFIG_KEYS == ("epochs", "batch_size", "optimizer", "lr", "momentum",
                           "weight_decay", "schedule", "patience")
    config = {"lr": 0.05, "schedule": "cosine", "momentum": None, "num_layers": 3,
              "seed": 9, "device": "cuda"}
    settings = settings_from(config, "digits", "ffnn", seed=2, epochs=4)
    assert (settings.lr, settings.schedule, settings.epochs, settings.seed) == (
        0.05, "cosine", 4, 2)
    assert settings.device == "auto" and settings.momentum == 0.0  # not config keys / unset
    assert settings_from({"epochs": 7}, "mnist", "ffnn") == settings_for("mnist", "ffnn",
                                                                         epochs=7)


@pytest.mark.parametrize("kwargs, field", [
    (dict(epochs=0), "epochs"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(lr=0.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(momentum=1.0), "momentum"),
    (dict(batch_size=0), "batch_size"),
    (dict(patience=0), "patience"),
    (dict(schedule="step"), "schedule"),
    (dict(device="tpu"), "device"),
    (dict(num_threads=0), "num_threads"),
])
def test_bad_settings_raise_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainSettings(**kwargs)


def test_bad_arguments_raise_value_error_naming_them(digits):
    with pytest.raises(ValueError, match="family"):
        settings_for("mnist", family="transformer")
    with pytest.raises(ValueError, match="nesterov"):
        settings_for("digits", nesterov=True)
    with pytest.raises(ValueError, match="start_epoch"):
        train_model(mlp(), digits, settings_for("digits", epochs=2), start_epoch=2)


@pytest.mark.slow  # a fresh interpreter with torch: seconds
def test_select_device_falls_back_to_cpu_with_fake_cuda_devices():
    """Ray sets CUDA_VISIBLE_DEVICES for fake GPUs; torch reads it at start-up."""
    code = "from steerage_ray.training import select_device; print(select_device())"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert out.stdout.strip() == expected
    if not torch.cuda.is_available():
        assert select_device() == torch.device("cpu")
        with pytest.raises(ValueError, match="device"):
            select_device("cuda")
