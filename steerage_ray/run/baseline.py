"""The baseline phase: the paper's reference model (MLP / LeNet-5 / ResNet-18) trained on
the same data with the final epochs, the "Baseline" row of the summary."""

from __future__ import annotations

import torch

from steerage_ray.checks import is_integer, is_number
from steerage_ray.data import Dataset
from steerage_ray.experiment import Experiment
from steerage_ray.models import (
    build_ffnn,
    build_lenet,
    count_flops,
    count_params,
    lenet5_baseline,
    resnet18_cifar,
)
from steerage_ray.run.inputs import training_settings
from steerage_ray.training import train_model


def run_baseline(experiment: Experiment, data: Dataset) -> dict:
    """Train the experiment's baseline with the final budget; return its scores."""
    model, description = baseline_model(experiment, data)
    settings = training_settings(experiment, data, experiment.training["final_epochs"])
    result = train_model(model, data, settings)
    return {"model": description, "val_acc": result.best_val_acc,
            "test_acc": result.test_acc, "params": count_params(model),
            "flops": count_flops(model, data.input_shape), "epochs": result.epochs_run,
            "seconds": round(result.seconds, 2)}


def baseline_model(experiment: Experiment, data: Dataset) -> tuple[torch.nn.Module, str]:
    """The untrained baseline network for the data, and how the summary names it."""
    spec = experiment.baseline
    unknown = sorted(set(spec) - {"hidden_sizes", "hidden_sizes_per_feature", "model"})
    if unknown:
        raise ValueError(f"baseline has unknown key(s) {unknown}; valid keys: "
                         f"hidden_sizes, hidden_sizes_per_feature (ffnn), model")
    torch.manual_seed(experiment.seed)
    if experiment.family == "ffnn":
        if "hidden_sizes" in spec:
            hidden = [int(h) for h in _sizes(spec["hidden_sizes"], "hidden_sizes", True)]
        elif "hidden_sizes_per_feature" in spec:
            hidden = [max(1, int(m * data.n_features)) for m in _sizes(
                spec["hidden_sizes_per_feature"], "hidden_sizes_per_feature", False)]
        else:
            raise ValueError("baseline needs hidden_sizes (e.g. [300, 100]) or "
                             "hidden_sizes_per_feature (e.g. [2, 1]) for an ffnn experiment")
        return (build_ffnn(data.n_features, hidden, data.n_classes),
                f"MLP {data.n_features}-{'-'.join(map(str, hidden))}-{data.n_classes}")
    channels, size = data.input_shape[0], data.input_shape[-1]
    if experiment.family == "lenet":
        if size == 28:
            return lenet5_baseline(data.n_classes, channels, size), "LeNet-5"
        return (build_lenet(channels, size, data.n_classes),
                f"LeNet-5 layout (6/16 filters, 5x5, FC 120-84) for {size}x{size} inputs")
    return resnet18_cifar(data.n_classes, channels), "ResNet-18 (CIFAR)"


def _sizes(values: object, key: str, integers: bool) -> list:
    """A non-empty list of positive integers (or numbers), or a ValueError naming it."""
    kind = is_integer if integers else is_number
    if not isinstance(values, list) or not values or \
            not all(kind(v) and v > 0 for v in values):
        what = "integers" if integers else "numbers"
        raise ValueError(f"baseline.{key} must be a non-empty list of positive {what}, "
                         f"got {values!r}")
    return values
