"""The Tune trainable of the global search: train one sampled architecture, report its scores.

A trial's config holds the architecture keys (docs/ARCHITECTURE.md) plus:

- ``family``: ``"ffnn"``, ``"lenet"`` or ``"resnet"`` (required);
- ``dataset``: a name (``"digits"``) or a spec dict (``{"name": "mnist", "root": ...,
  "seed": 0}``, or ``{"csv": path, "label_column": ...}``, ``{"npz": path}``,
  ``{"image_folder": path}``), unless the dataset is injected with
  :func:`make_trainable`;
- training settings, all optional, defaulting to ``settings_for(dataset, family)``:
  ``epochs``, ``batch_size``, ``optimizer``, ``lr``, ``momentum``, ``weight_decay``,
  ``schedule``, ``patience``;
- ``seed`` (default 0): weights, batch order and dimensionality reduction.

Every epoch reports ``val_acc`` (the searched metric, mode ``"max"``) so a scheduler
such as ASHA can stop the trial; the last epoch's report adds ``test_acc``,
``quant_test_acc`` (test accuracy with the config's ``quant_bits`` applied), ``params``
and ``flops``, plus where it ran (``on_gpu``: False on a GPU torch cannot use, e.g. the
fake GPUs of a simulated cluster; ``gpus_assigned``; ``node_id``, the Ray node;
``torch_threads``, set to the trial's CPUs). The metric is always reported: a diverged model reports
``val_acc = 0.0`` with ``diverged = True``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import time
from dataclasses import replace
from collections.abc import Mapping
from typing import Callable

import ray
import torch
from ray import tune

from steerage_ray.data import (
    Dataset,
    load_csv,
    load_dataset,
    load_image_folder,
    load_npz,
    prepare_for_config,
)
from steerage_ray.data.reduction import reduced_dimension
from steerage_ray.models import build_model, count_flops, count_params, quantize_model
from steerage_ray.space import SearchSpace
from steerage_ray.training import (
    TrainSettings,
    evaluate,
    select_device,
    settings_for,
    train_model,
)

METRIC, MODE = "val_acc", "max"
TRAINING_KEYS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                 "schedule", "patience")
_CHECKPOINT_FILE = "state.pt"
CHECKPOINT_SECONDS = 60.0
_FILE_LOADERS: dict[str, Callable[..., Dataset]] = {
    "csv": load_csv, "npz": load_npz, "image_folder": load_image_folder}


def train_architecture(config: dict, dataset: Dataset | None = None,
                       checkpoint_seconds: float | None = CHECKPOINT_SECONDS) -> None:
    """Train the architecture ``config`` describes and report to Tune (function trainable).

    One report per epoch, so ``training_iteration`` counts epochs (ASHA's ``max_t`` can
    be the epoch count). The last epoch's report also carries the final scores, and its
    ``val_acc`` is the returned model's (the best epoch's weights); ``last_val_acc`` is
    the last epoch's. ``patience`` is applied here rather than in ``train_model`` so the
    last epoch is known when it is reported.

    ``dataset`` (injected by :func:`make_trainable`) wins over ``config["dataset"]``.
    A checkpoint (weights, optimizer state, epoch) is written at the end of an epoch when
    ``checkpoint_seconds`` have passed since the last one (0: every epoch; None: only
    the final one); a restored trial continues from its latest checkpoint with the same
    batch order. Time, not epochs, sets the pace: a trial of a few seconds writes only
    its final checkpoint, an hour-long one loses at most a minute to a failure. After a restore the best-epoch tracking restarts, so the final
    model is the best of the resumed epochs. The last report carries a checkpoint of the
    returned (best-epoch) weights, so the winner of a search can be loaded without
    retraining (``GlobalSearchResult.best_state_dict``).
    """
    family = config.get("family")
    if family is None:
        raise ValueError("config['family'] is missing: give 'ffnn', 'lenet' or 'resnet'")
    base = dataset if dataset is not None else load_dataset_spec(_dataset_spec(config))
    seed = int(config.get("seed", 0))
    data = prepare_for_config(base, config, seed=seed)
    settings = _settings(config, base.name, family, seed)
    model = build_model(family, config, data.input_shape, data.n_classes, seed=seed)
    start_epoch, optimizer_state = _restore_checkpoint(model, settings.epochs)
    best = {"val_acc": -math.inf, "epoch": start_epoch}
    last_epoch: dict = {}
    last_weights: dict = {}
    last_checkpoint = [time.monotonic()]

    def report_epoch(epoch) -> bool:
        if epoch.val_acc > best["val_acc"]:
            best.update(val_acc=epoch.val_acc, epoch=epoch.epoch)
        stop = settings.patience is not None and epoch.epoch - best["epoch"] >= settings.patience
        metrics = {"last_val_acc": epoch.val_acc, "val_loss": epoch.val_loss,
                   "train_loss": epoch.train_loss, "train_acc": epoch.train_acc,
                   "epoch": epoch.epoch + 1, "lr": epoch.lr}
        if stop or epoch.epoch + 1 == settings.epochs:
            last_epoch.update(metrics)  # reported below, with the final scores
            # train_model restores the best weights after this; resuming needs the last.
            last_weights.update({k: v.detach().clone()
                                 for k, v in epoch.model.state_dict().items()})
            return stop
        state = None
        if checkpoint_seconds is not None and \
                time.monotonic() - last_checkpoint[0] >= checkpoint_seconds:
            state = {"model": epoch.model.state_dict(),
                     "optimizer": epoch.optimizer.state_dict(), "epoch": epoch.epoch + 1}
            last_checkpoint[0] = time.monotonic()
        _report({METRIC: epoch.val_acc, **metrics}, state)
        return False

    if start_epoch < settings.epochs:
        outcome = train_model(model, data, replace(settings, patience=None),
                              on_epoch=report_epoch, start_epoch=start_epoch,
                              optimizer_state=optimizer_state)
        scores = {METRIC: 0.0 if outcome.diverged else outcome.best_val_acc,
                  "diverged": outcome.diverged, "test_acc": outcome.test_acc,
                  "stop_reason": ("early_stopping" if outcome.stop_reason == "callback"
                                  else outcome.stop_reason)}
        optimizer_state = outcome.optimizer_state
        end_epoch = start_epoch + outcome.epochs_run
    else:  # restored from the final checkpoint: the model is trained, only report it
        scores = {METRIC: evaluate(model, data.X_val, data.y_val)[0], "diverged": False,
                  "test_acc": evaluate(model, data.X_test, data.y_test)[0],
                  "stop_reason": "completed"}
        end_epoch, last_weights = start_epoch, model.state_dict()
    bits = config.get("quant_bits") or 32
    quant_test_acc = (scores["test_acc"] if bits == 32 else
                      evaluate(quantize_model(model, bits), data.X_test, data.y_test)[0])
    # Resumable state plus the returned weights (e.g. the winner's, for local search).
    final_state = {"model": last_weights or model.state_dict(), "optimizer": optimizer_state,
                   "epoch": end_epoch, "best_model": model.state_dict()}
    _report({
        **last_epoch,
        **scores,
        "quant_test_acc": quant_test_acc,
        "quant_bits": bits,
        "params": count_params(model),
        "flops": count_flops(model, data.input_shape),
        "input_features": math.prod(data.input_shape),
        "on_gpu": select_device(settings.device).type == "cuda",
        "gpus_assigned": len(ray.get_gpu_ids()) if ray.is_initialized() else 0,
        "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
        "torch_threads": settings.num_threads or torch.get_num_threads(),
    }, final_state)


def make_trainable(dataset: Dataset | str | Mapping, *, cpus_per_trial: float = 1,
                   gpus_per_trial: float = 0,
                   checkpoint_seconds: float | None = CHECKPOINT_SECONDS):
    """``train_architecture`` with the dataset in Ray's object store and resources set.

    The dataset (a ``Dataset`` or a spec, loaded here once) is put into the object store
    with ``tune.with_parameters``, so each node holds one copy and workers need no data
    files. Fractional GPUs are allowed; a trial scheduled on a GPU that torch cannot use
    (e.g. fake GPUs of a simulated cluster) trains on the CPU.
    """
    if not isinstance(dataset, Dataset):
        dataset = load_dataset_spec(dataset)
    if checkpoint_seconds is not None and (
            isinstance(checkpoint_seconds, bool)
            or not isinstance(checkpoint_seconds, (int, float)) or checkpoint_seconds < 0):
        raise ValueError(f"checkpoint_seconds must be None or a number >= 0, got "
                         f"{checkpoint_seconds!r}")
    trainable = tune.with_parameters(train_architecture, dataset=dataset,
                                     checkpoint_seconds=checkpoint_seconds)
    return with_resources(trainable, cpus_per_trial, gpus_per_trial)


def with_resources(trainable, cpus_per_trial: float = 1, gpus_per_trial: float = 0):
    """``tune.with_resources`` with checked CPU/GPU numbers (fractions allowed)."""
    for name, value in (("cpus_per_trial", cpus_per_trial), ("gpus_per_trial", gpus_per_trial)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if cpus_per_trial == 0 and gpus_per_trial == 0:
        raise ValueError("cpus_per_trial and gpus_per_trial cannot both be 0")
    return tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


def check_space_fits(space: SearchSpace, family: str, dataset: Dataset) -> None:
    """Raise ValueError before any trial if some config of ``space`` cannot train on ``dataset``.

    Checks what would otherwise fail inside trials: a DR ratio leaving fewer than one
    feature, a convolutional family on tabular data, and a fixed ``image_size`` that
    differs from the data's without an ``image_filter`` to resize.
    """
    if family != "ffnn" and dataset.kind != "image":
        raise ValueError(f"family {family!r} needs an image dataset, but {dataset.name!r} "
                         f"is tabular; use family='ffnn' or an image dataset")
    if "dr_ratio" in space.names:
        try:
            reduced_dimension(dataset.n_features, space["dr_ratio"].max_value)
        except ValueError as error:
            raise ValueError(f"space does not fit dataset {dataset.name!r} "
                             f"({dataset.n_features} features): {error}; build the space "
                             f"with ffnn_space(n_features={dataset.n_features})") from None
    size = space.constants.get("image_size")
    resizable = "image_filter" in space.names or "image_filter" in space.constants
    if size is not None and not resizable and dataset.kind == "image" \
            and tuple(dataset.input_shape[1:]) != (size, size):
        raise ValueError(f"space fixes image_size={size} but {dataset.name!r} has "
                         f"{dataset.input_shape[1]}x{dataset.input_shape[2]} images and "
                         f"the space has no image_filter to resize them")


def load_dataset_spec(spec: str | Mapping) -> Dataset:
    """Load a dataset from a name or a spec dict; cached per process (one load per worker)."""
    return _load_cached(_freeze(_normalise_spec(spec)))


def _normalise_spec(spec: str | Mapping) -> dict:
    if isinstance(spec, str):
        return {"name": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"dataset must be a name, a spec dict or a Dataset, got "
                         f"{type(spec).__name__}")
    sources = [key for key in ("name", *_FILE_LOADERS) if key in spec]
    if len(sources) != 1:
        raise ValueError(f"dataset spec needs exactly one of 'name', 'csv', 'npz', "
                         f"'image_folder'; got keys {sorted(spec)}")
    return dict(spec)


@functools.lru_cache(maxsize=4)
def _load_cached(frozen: str) -> Dataset:
    spec = json.loads(frozen)
    if "name" in spec:
        return load_dataset(spec.pop("name"), **spec)
    source = next(key for key in _FILE_LOADERS if key in spec)
    return _FILE_LOADERS[source](spec.pop(source), **spec)


def _freeze(spec: dict) -> str:
    try:
        return json.dumps(spec, sort_keys=True)
    except TypeError as error:
        raise ValueError(f"dataset spec values must be plain JSON values: {error}") from None


def _dataset_spec(config: Mapping) -> str | Mapping:
    if "dataset" not in config:
        raise ValueError("config['dataset'] is missing: give a dataset name or spec dict, "
                         "or build the trainable with make_trainable(dataset)")
    return config["dataset"]


def _settings(config: Mapping, dataset_name: str, family: str, seed: int) -> TrainSettings:
    overrides = {key: config[key] for key in TRAINING_KEYS if config.get(key) is not None}
    return settings_for(dataset_name, family, **overrides, seed=seed,
                        num_threads=_trial_cpus())


def _trial_cpus() -> int | None:
    """Torch threads = CPUs Tune gave this trial (None outside Tune: leave torch alone)."""
    try:
        resources = tune.get_context().get_trial_resources().required_resources
    except (RuntimeError, AttributeError):
        return None
    return max(1, int(resources.get("CPU", 1)))


def load_checkpoint_state(checkpoint: tune.Checkpoint) -> dict:
    """A trial checkpoint's content: ``model`` (the weights after ``epoch`` epochs),
    ``optimizer`` and ``epoch``; the last one also has ``best_model``, the weights the
    trial reported (its best epoch's)."""
    with checkpoint.as_directory() as folder:
        return torch.load(os.path.join(folder, _CHECKPOINT_FILE), map_location="cpu",
                          weights_only=True)


def _restore_checkpoint(model: torch.nn.Module, epochs: int) -> tuple[int, dict | None]:
    """Load the latest checkpoint into ``model``: the last epoch's weights to continue
    training, or the returned (best) weights when all ``epochs`` are done."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0, None
    state = load_checkpoint_state(checkpoint)
    finished = state["epoch"] >= epochs and "best_model" in state
    model.load_state_dict(state["best_model"] if finished else state["model"])
    return state["epoch"], state["optimizer"]


def _report(metrics: dict, state: dict | None = None) -> None:
    """``tune.report``, with a checkpoint holding ``state`` (weights, optimizer, epoch)."""
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, _CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
