"""The Tune trainable of the global search: train one sampled architecture, report its scores.

A thin adapter between a Tune trial and ``training.train_model``: it turns the trial's
config into data, model and ``TrainSettings``, reports each epoch to Tune (with
checkpoints), and adds the final scores to the last report.

A trial's config holds the architecture keys (docs/ARCHITECTURE.md) plus:

- ``family``: ``"ffnn"``, ``"lenet"`` or ``"resnet"`` (required);
- ``dataset``: a dataset spec (``data.load_dataset_spec``: a name such as ``"digits"``
  or a dict such as ``{"csv": path, "label_column": ...}``), unless the dataset is
  injected with :func:`make_trainable`;
- training settings, all optional, defaulting to ``settings_for(dataset, family)``:
  ``training.CONFIG_KEYS`` (``epochs``, ``batch_size``, ``optimizer``, ``lr``,
  ``momentum``, ``weight_decay``, ``schedule``, ``patience``);
- ``seed`` (default 0): weights, batch order and dimensionality reduction.

Every epoch reports ``val_acc`` (the searched metric, mode ``"max"``) so a scheduler
such as ASHA can stop the trial; the last epoch's report adds ``test_acc``,
``quant_bits`` (the config's, or the fewest bits that keep the validation accuracy)
and ``quant_test_acc`` (test accuracy at those bits), ``params``
and ``flops``, plus where it ran (``on_gpu``: False on a GPU torch cannot use, e.g. the
fake GPUs of a simulated cluster; ``gpus_assigned``; ``node_id``, the Ray node;
``torch_threads``, set to the trial's CPUs). The metric is always reported: a diverged
model reports ``val_acc = 0.0`` with ``diverged = True``.

Failures: an error raised while training (the user's data, config or model) is
reported as a last result with ``trial_error`` (and ``val_acc`` NaN) before it is
raised, so the driver's :class:`FailurePolicy` can tell it from a system failure (a
dead actor or node, a lost object), which Tune's ``FailureConfig`` retries from the
trial's last checkpoint; retrying the user's own error would only fail again. A write
that finds the storage full is reported as ``storage_error`` (the path), and the
policy stops the whole run at once: every later trial would fail the same way.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping

import ray
import torch
from ray import tune

from steerage_ray import storage
from steerage_ray.checks import is_number, number
from steerage_ray.data import Dataset, load_dataset_spec, prepare_for_config
from steerage_ray.families import check_family
from steerage_ray.models import build_model, count_flops, count_params
from steerage_ray.precision import config_precision, precision_of
from steerage_ray.training import (
    EpochResult,
    TrainResult,
    TrainSettings,
    evaluate,
    select_device,
    settings_from,
    train_model,
)

METRIC, MODE = "val_acc", "max"
_CHECKPOINT_FILE = "state.pt"
CHECKPOINT_SECONDS = 60.0


def train_architecture(config: dict, dataset: Dataset | None = None,
                       checkpoint_seconds: float | None = CHECKPOINT_SECONDS) -> None:
    """Train the architecture ``config`` describes and report to Tune (function trainable).

    One report per epoch, so ``training_iteration`` counts epochs (ASHA's ``max_t`` can
    be the epoch count). The last epoch's report also carries the final scores, and its
    ``val_acc`` is the returned model's (the best epoch's weights); ``last_val_acc`` is
    the last epoch's. ``patience`` stops training as in ``train_model``.

    ``dataset`` (injected by :func:`make_trainable`) wins over ``config["dataset"]``.
    A checkpoint (weights, optimizer state, epoch) is written at the end of an epoch when
    ``checkpoint_seconds`` have passed since the last one (0: every epoch; None: only
    the final one); a restored trial continues from its latest checkpoint with the same
    batch order. Time, not epochs, sets the pace: a trial of a few seconds writes only
    its final checkpoint, an hour-long one loses at most a minute to a failure. After a
    restore the best-epoch tracking restarts, so the final model is the best of the
    resumed epochs. The last report carries a checkpoint of the returned (best-epoch)
    weights, so the winner of a search can be loaded without retraining
    (``GlobalSearchResult.best_state_dict``).

    An error is reported (``trial_error`` or ``storage_error``) before it is raised, see
    the module docstring; Ray's own errors (system failures) are raised as they are.
    """
    try:
        _train_and_report(config, dataset, checkpoint_seconds)
    except ray.exceptions.RayError:
        raise  # a system failure: Tune retries the trial (FailureConfig)
    except Exception as error:
        _report_failure(error)
        raise


def train_config(config: Mapping, dataset: Dataset | None = None,
                 num_threads: int | None = None) -> tuple[torch.nn.Module, dict]:
    """Train ``config`` as a trial would, outside Tune: no reports, no checkpoints.

    Returns the trained model (the best epoch's weights) and the scores a trial's last
    report carries (``val_acc``, ``test_acc``, ``quant_test_acc``, ``params``,
    ``flops``, ...). The pipeline trains a global-search winner again this way when it
    came from a round with fewer epochs than the final one (``run.phases``)."""
    data, settings, model = _prepare(config, dataset, num_threads)
    outcome = train_model(model, data, settings)
    scores = {**_outcome_scores(outcome), "epoch": outcome.epochs_run}
    return model, {**scores, **_final_scores(model, data, config, settings,
                                             scores["test_acc"])}


def _prepare(config: Mapping, dataset: Dataset | None,
             num_threads: int | None) -> tuple[Dataset, TrainSettings, torch.nn.Module]:
    """The config's data (its DR applied), training settings and untrained model."""
    if config.get("family") is None:
        raise ValueError("config['family'] is missing: give 'ffnn', 'lenet' or 'resnet'")
    family = check_family(config["family"])
    base = dataset if dataset is not None else load_dataset_spec(_dataset_spec(config))
    seed = int(config.get("seed", 0))
    data = prepare_for_config(base, config, seed=seed)
    settings = settings_from(config, base.name, family, seed=seed, num_threads=num_threads)
    return data, settings, build_model(family, config, data.input_shape, data.n_classes,
                                       seed=seed)


def _outcome_scores(outcome: TrainResult) -> dict:
    return {METRIC: 0.0 if outcome.diverged else outcome.best_val_acc,
            "diverged": outcome.diverged, "test_acc": outcome.test_acc,
            "stop_reason": outcome.stop_reason}


def _train_and_report(config: dict, dataset: Dataset | None,
                      checkpoint_seconds: float | None) -> None:
    data, settings, model = _prepare(config, dataset, _trial_cpus())
    start_epoch, optimizer_state = _restore_checkpoint(model, settings.epochs)
    reporter = EpochReporter(checkpoint_seconds)
    if start_epoch < settings.epochs:
        outcome = train_model(model, data, settings, on_epoch=reporter,
                              start_epoch=start_epoch, optimizer_state=optimizer_state)
        scores = _outcome_scores(outcome)
        optimizer_state = outcome.optimizer_state
        end_epoch = start_epoch + outcome.epochs_run
    else:  # restored from the final checkpoint: the model is trained, only report it
        scores = {METRIC: evaluate(model, data.X_val, data.y_val)[0], "diverged": False,
                  "test_acc": evaluate(model, data.X_test, data.y_test)[0],
                  "stop_reason": "completed"}
        end_epoch = start_epoch
        reporter.last_weights = model.state_dict()
        reporter.last_metrics = {"epoch": end_epoch}
    # Resumable state plus the returned weights (e.g. the winner's, for local search).
    final_state = {"model": reporter.last_weights or model.state_dict(),
                   "optimizer": optimizer_state, "epoch": end_epoch,
                   "best_model": model.state_dict()}
    _report({**reporter.last_metrics, **scores,
             **_final_scores(model, data, config, settings, scores["test_acc"])}, final_state)


class EpochReporter:
    """The ``on_epoch`` callback of a trial: reports every epoch but the last to Tune
    (with a checkpoint when ``checkpoint_seconds`` have passed), and keeps the last
    epoch's numbers and weights for the final report, which adds the final scores."""

    def __init__(self, checkpoint_seconds: float | None) -> None:
        self.checkpoint_seconds = checkpoint_seconds
        self.last_checkpoint = time.monotonic()
        self.last_metrics: dict = {}
        self.last_weights: dict = {}

    def __call__(self, epoch: EpochResult) -> None:
        metrics = {"last_val_acc": epoch.val_acc, "val_loss": epoch.val_loss,
                   "train_loss": epoch.train_loss, "train_acc": epoch.train_acc,
                   "epoch": epoch.epoch + 1, "lr": epoch.lr}
        if epoch.final:
            self.last_metrics = metrics  # reported with the final scores
            # train_model restores the best weights after this; resuming needs the last.
            self.last_weights = {k: v.detach().clone()
                                 for k, v in epoch.model.state_dict().items()}
            return
        _report({METRIC: epoch.val_acc, **metrics}, self._checkpoint(epoch))

    def _checkpoint(self, epoch: EpochResult) -> dict | None:
        if self.checkpoint_seconds is None or \
                time.monotonic() - self.last_checkpoint < self.checkpoint_seconds:
            return None
        self.last_checkpoint = time.monotonic()
        return {"model": epoch.model.state_dict(), "optimizer": epoch.optimizer.state_dict(),
                "epoch": epoch.epoch + 1}


def _final_scores(model: torch.nn.Module, data: Dataset, config: Mapping,
                  settings: TrainSettings, test_acc: float) -> dict:
    """What the last report adds: precision, size, and where the trial ran.

    The precision is the config's ``quant_bits``, or without one (the default
    algorithm) the fewest bits that keep the validation accuracy, among the config's
    ``precision_choices`` when it has them (``precision.precision_of``);
    ``quant_test_acc`` is the test accuracy at it."""
    precision = precision_of(model, data, config_precision(config), test_acc=test_acc)
    return {
        "quant_test_acc": precision.test_acc,
        "quant_bits": precision.bits,
        "params": count_params(model),
        "flops": count_flops(model, data.input_shape),
        "input_features": math.prod(data.input_shape),
        "on_gpu": select_device(settings.device).type == "cuda",
        "gpus_assigned": len(ray.get_gpu_ids()) if ray.is_initialized() else 0,
        "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
        "torch_threads": settings.num_threads or torch.get_num_threads(),
    }


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
    if checkpoint_seconds is not None and not (is_number(checkpoint_seconds)
                                               and checkpoint_seconds >= 0):
        raise ValueError(f"checkpoint_seconds must be None or a number >= 0, got "
                         f"{checkpoint_seconds!r}")
    trainable = tune.with_parameters(train_architecture, dataset=dataset,
                                     checkpoint_seconds=checkpoint_seconds)
    return with_resources(trainable, cpus_per_trial, gpus_per_trial)


def with_resources(trainable, cpus_per_trial: float = 1, gpus_per_trial: float = 0):
    """``tune.with_resources`` with checked CPU/GPU numbers (fractions allowed)."""
    number(cpus_per_trial, "cpus_per_trial", 0)
    number(gpus_per_trial, "gpus_per_trial", 0)
    if cpus_per_trial == 0 and gpus_per_trial == 0:
        raise ValueError("cpus_per_trial and gpus_per_trial cannot both be 0")
    return tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


def _dataset_spec(config: Mapping) -> str | Mapping:
    if "dataset" not in config:
        raise ValueError("config['dataset'] is missing: give a dataset name or spec dict, "
                         "or build the trainable with make_trainable(dataset)")
    return config["dataset"]


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


def _report_failure(error: Exception) -> None:
    """Tell the driver why this trial fails (see the module docstring); nothing outside
    a Tune session or when even this report cannot be made."""
    full = storage.storage_full(error)
    if full is not None:
        full = storage.first_failure() or full  # the path, as the filesystem saw it
        failure = {"storage_error": str(full.filename)}
    else:
        failure = {"trial_error": f"{type(error).__name__}: {error}"}
    try:
        tune.report({METRIC: math.nan, **failure})
    except Exception:  # noqa: BLE001 - the original error is what matters
        pass


class FailurePolicy(tune.Callback):
    """What the driver does when a trial fails (a Tune callback of every global search).

    - a system failure (actor or node died, object lost) is left to Tune's
      ``FailureConfig(max_failures=...)``: the trial restarts from its last checkpoint;
    - an error the trial reported as ``trial_error`` (raised by training itself) ends
      the trial for good, however many retries are left;
    - a system failure that Tune ends the trial for although retries are left stops
      the run with :class:`TrialLost`, and the caller restarts it from the last saved
      state (``global_search`` does): Tune retries only a trial that was running, so a
      trial handed a reused actor that had died meanwhile (killed, or on a lost node)
      used to be lost at once, and the search went on without its architecture;
    - a full storage (``storage_error`` from a trial, or a write of the driver's own
      experiment state) stops the run with :class:`~steerage_ray.storage.StorageFull`
      naming the path; everything written before stays as it was.
    """

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get("storage_error"):
            raise storage.StorageFull(result["storage_error"])
        if result.get("trial_error"):
            trial.max_failures = 0  # the error that follows is final, not retried

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        retries_left = trial.max_failures < 0 or \
            trial.run_metadata.num_failures <= trial.max_failures
        if retries_left:  # not a training error (those have max_failures 0): Tune gave up
            raise TrialLost(trial.trial_id)

    def on_step_end(self, iteration, trials, **info) -> None:
        failure = storage.first_failure()
        if failure is not None:
            raise failure


class TrialLost(RuntimeError):
    """Tune ended a trial for a system failure although it had retries left; the run
    must restart from its last saved state (where the trial is still in flight)."""

    def __init__(self, trial_id: str) -> None:
        super().__init__(f"trial {trial_id} was lost to a system failure that Tune did "
                         f"not retry")
        self.trial_id = trial_id


def _report(metrics: dict, state: dict | None = None) -> None:
    """``tune.report``, with a checkpoint holding ``state`` (weights, optimizer, epoch)."""
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, _CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
