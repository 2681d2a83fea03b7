"""``global_search``: the STEERAGE global search as one Ray Tune experiment.

It wires :class:`~steerage_ray.searchers.SteerageSearcher` to the
:func:`~steerage_ray.trainables.train_architecture` trainable: the dataset goes into
Ray's object store once, every trial gets ``cpus_per_trial``/``gpus_per_trial``, actors
are reused between trials, and the searcher ends the experiment itself after the final
round. :func:`resume_global_search` continues an interrupted experiment with
``Tuner.restore``; finished trials are kept and unfinished ones resume from their last
checkpoint, so no architecture is trained twice.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import ray
from ray import tune

from steerage_ray.data import Dataset, check_space_fits, load_dataset_spec
from steerage_ray.evolution import EvolutionResult
from steerage_ray.families import check_family
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.searchers import SteerageSearcher
from steerage_ray.searchers.steerage import FINAL
from steerage_ray.space import SearchSpace, get_preset
from steerage_ray.trainables import (
    CHECKPOINT_SECONDS,
    METRIC,
    MODE,
    load_checkpoint_state,
    make_trainable,
)
from steerage_ray.training import CONFIG_KEYS


@dataclass
class GlobalSearchResult:
    """What a global search found.

    ``best_config``/``best_result``: the final round's trained EES winner (the best by
    ``val_acc`` when ``final_count > 1``), as the trainable received it and what it
    reported (``val_acc``, ``test_acc``, ``quant_test_acc``, ``params``, ``flops``...).
    ``best_observed_config``/``best_observed_result``: the best trial of any phase.
    ``trials``: every trial (``SteerageSearcher.observations``). ``round_scores``: the
    predictor's held-out Kendall tau per round and the refit/EES times.
    ``best_state_dict`` / ``best_observed_state_dict``: the trained weights of those two
    (from their last checkpoints; None when checkpoints were turned off).
    """

    best_config: dict | None
    best_result: dict | None
    best_observed_config: dict | None
    best_observed_result: dict | None
    predictor: AccuracyPredictor | None
    ees_result: EvolutionResult | None
    trials: pd.DataFrame
    round_scores: pd.DataFrame
    best_state_dict: dict | None
    best_observed_state_dict: dict | None
    experiment_path: str
    result_grid: tune.ResultGrid
    searcher: SteerageSearcher


def global_search(
    dataset: Dataset | str | Mapping,
    family: str = "ffnn",
    *,
    space: SearchSpace | str | Mapping | None = None,
    budget: int | None = None,
    epochs: int | None = None,
    final_epochs: int | None = None,
    training: Mapping[str, Any] | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    max_concurrent_trials: int | None = None,
    storage_path: str | None = None,
    name: str | None = None,
    seed: int = 0,
    scheduler: Any = None,
    verbose: int = 1,
    callbacks: list | None = None,
    checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
    **searcher_options: Any,
) -> GlobalSearchResult:
    """Run STEERAGE's global search (Algorithms 1 and 2) on Ray Tune and return its result.

    Args:
        dataset: a ``Dataset``, a dataset name (``"digits"``) or a spec dict.
        family: ``"ffnn"``, ``"lenet"`` or ``"resnet"``.
        space: the search space; default: the family's preset sized for the dataset
            (``ffnn_space(n_features)``, ``lenet_space(image side)``, ``resnet_space()``).
        budget: total trials (round sizes are scaled to it, see ``SearchPlan``).
        epochs, final_epochs: training epochs of search trials and of the final round
            (default: ``settings_for`` the dataset; ``final_epochs`` defaults to
            ``epochs``). ``training``: other ``TrainSettings`` keys (``lr``, ...).
        cpus_per_trial, gpus_per_trial: resources per trial (fractions allowed).
        max_concurrent_trials: trials in flight at once. Default: as many as the
            cluster's CPUs and GPUs hold right now (Tune would otherwise run a custom
            searcher's trials one at a time). On an autoscaling cluster pass the
            number for the cluster at full size.
        storage_path, name: where Tune writes the experiment (``storage_path/name``;
            use shared storage on a cluster). ``name`` defaults to a timestamped one.
        seed: seeds the searcher and every trial.
        scheduler: a Tune scheduler, e.g. ASHA (early-stopped trials are labelled with
            the best ``val_acc`` they reported).
        searcher_options: ``SteerageSearcher`` arguments (``count``, ``iter_count``,
            ``iterations``, ``final_count``, ``ees_population``, ...).
    """
    check_family(family)
    data = dataset if isinstance(dataset, Dataset) else load_dataset_spec(dataset)
    final_config = dict(searcher_options.pop("final_config", None) or {})
    if final_epochs is not None:
        final_config["epochs"] = final_epochs
    _quiet_snapshot_warning()
    searcher = SteerageSearcher(_sized_space(space, family, data), METRIC, MODE,
                                budget=budget, seed=seed, final_config=final_config,
                                **searcher_options)
    check_space_fits(searcher.space, family, data)
    tuner = tune.Tuner(
        make_trainable(data, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                       checkpoint_seconds=checkpoint_seconds),
        param_space=_training_constants(family, seed, epochs, training),
        tune_config=tune.TuneConfig(
            search_alg=searcher, metric=METRIC, mode=MODE, num_samples=searcher.plan.total,
            max_concurrent_trials=max_concurrent_trials or _trials_that_fit(
                cpus_per_trial, gpus_per_trial),
            scheduler=scheduler,
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=name or f"steerage-{family}-{data.name}-"
                         f"{datetime.datetime.now():%Y%m%d-%H%M%S}",
            storage_path=storage_path, verbose=verbose, callbacks=callbacks,
            # One checkpoint per trial: the latest, which after the last epoch holds the
            # trained weights. Keeping every epoch's would cost gigabytes per search.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    return _collect(tuner.fit(), searcher)


def resume_global_search(path: str, dataset: Dataset | str | Mapping, *,
                         cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                         checkpoint_seconds: float | None = CHECKPOINT_SECONDS
                         ) -> GlobalSearchResult:
    """Continue an interrupted :func:`global_search` experiment stored at ``path``.

    Give the same dataset (Tune needs the trainable again). Finished trials are kept,
    unfinished ones resume from their last checkpoint under their old trial ids, and
    the searcher continues from its saved state, so the total number of trained
    architectures is what an uninterrupted run trains, none twice.
    """
    data = dataset if isinstance(dataset, Dataset) else load_dataset_spec(dataset)
    trainable = make_trainable(data, cpus_per_trial=cpus_per_trial,
                               gpus_per_trial=gpus_per_trial,
                               checkpoint_seconds=checkpoint_seconds)
    _quiet_snapshot_warning()
    grid = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True).fit()
    searcher = SteerageSearcher()
    searcher.restore_from_dir(grid.experiment_path)
    return _collect(grid, searcher)


def _sized_space(space: SearchSpace | str | Mapping | None, family: str,
                 data: Dataset) -> SearchSpace | Mapping:
    """The family's preset (or the named one) sized for the data; other spaces as given."""
    preset = family if space is None else space
    if not isinstance(preset, str):
        return preset
    sizing = {"ffnn": {"n_features": data.n_features},
              "lenet": {"image_size": data.input_shape[-1]}}
    return get_preset(preset, **sizing.get(preset, {}))


def _training_constants(family: str, seed: int, epochs: int | None,
                        training: Mapping[str, Any] | None) -> dict:
    """Constants of every trial's config (Tune merges the searcher's suggestion in)."""
    training = dict(training or {})
    unknown = sorted(set(training) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"training has unknown key(s) {unknown}; valid keys: "
                         f"{list(CONFIG_KEYS)}")
    if epochs is not None:
        training["epochs"] = epochs
    return {"family": family, "seed": seed, **training}


def _quiet_snapshot_warning() -> None:
    """Keeping one checkpoint per trial makes Tune snapshot the experiment after each
    checkpoint (that is what keeps resume exact); its warning about that is noise here."""
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def _trials_that_fit(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster's current resources run at once (at least 1)."""
    if not ray.is_initialized():
        ray.init()  # what Tuner.fit would do: connect to the cluster or start one
    resources = ray.cluster_resources()
    fits = []
    if cpus_per_trial:
        fits.append(resources.get("CPU", 0) // cpus_per_trial)
    if gpus_per_trial:
        fits.append(resources.get("GPU", 0) // gpus_per_trial)
    return max(1, int(min(fits)))


def _collect(grid: tune.ResultGrid, searcher: SteerageSearcher) -> GlobalSearchResult:
    trials = searcher.observations
    completed = trials[trials["status"] == "completed"] if len(trials) else trials
    by_id = {result.metrics.get("trial_id"): result for result in grid}
    final = _best_trial(searcher, completed[completed["phase"] == FINAL], by_id)
    best = _best_trial(searcher, completed, by_id)
    return GlobalSearchResult(
        best_config=final and final["config"], best_result=final and final["result"],
        best_observed_config=best and best["config"],
        best_observed_result=best and best["result"],
        predictor=searcher.predictor, ees_result=searcher.ees_result, trials=trials,
        round_scores=searcher.round_scores,
        best_state_dict=final and _trained_weights(by_id.get(final["trial_id"])),
        best_observed_state_dict=best and _trained_weights(by_id.get(best["trial_id"])),
        experiment_path=grid.experiment_path,
        result_grid=grid, searcher=searcher)


def _best_trial(searcher: SteerageSearcher, trials: pd.DataFrame,
                by_id: Mapping[str, tune.Result]) -> dict | None:
    """The searcher's record of the best trial, with the config exactly as the trainable
    received it (Tune merges the param-space constants into the suggestion)."""
    if trials.empty:
        return None
    record = searcher.trial(trials.loc[trials["metric"].idxmax(), "trial_id"])
    if record["trial_id"] in by_id:
        record["config"] = dict(by_id[record["trial_id"]].config)
    return record


def _trained_weights(result: tune.Result | None) -> dict | None:
    """The weights a trial reported (``best_model`` of its last checkpoint)."""
    if result is None or result.checkpoint is None:
        return None
    return load_checkpoint_state(result.checkpoint).get("best_model")
