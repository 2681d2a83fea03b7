"""``global_search``: the STEERAGE global search as one Ray Tune experiment.

It wires :class:`~steerage_ray.searchers.SteerageSearcher` to the
:func:`~steerage_ray.trainables.train_architecture` trainable: the dataset goes into
Ray's object store once, every trial gets ``cpus_per_trial``/``gpus_per_trial``, actors
are reused between trials, and the searcher ends the experiment itself after the final
round. :func:`resume_global_search` continues an interrupted experiment with
``Tuner.restore``; finished trials are kept and unfinished ones resume from their last
checkpoint, so no architecture is trained twice.

Nothing lost, nothing hangs:

- every argument, the training settings and the space (against the family and the
  data) are checked before Ray starts; Ray is an embedded local one unless ``address``
  is given (an address nothing answers at fails within seconds), and per-trial
  resources no node can provide are refused before Tune starts;
- a trial lost to a system failure (its actor or node died) is retried from its last
  checkpoint, up to ``max_failures`` times; an error raised by training is not
  retried (``trainables.FailurePolicy``). Where Tune gives up on such a trial anyway
  (it retries only running trials, not one handed a reused actor that had died), the
  search restarts from its last saved state, where the trial is still in flight;
- Ctrl-C (SIGINT) stops Tune, which saves its state, and raises
  :class:`SearchInterrupted` (a ``KeyboardInterrupt``) instead of returning a partial
  result; so does a search that ended before its plan was complete;
- Tune's files are written atomically (``storage.tune_filesystem``): a full disk
  stops the search with :class:`~steerage_ray.storage.StorageFull` naming the path and
  leaves the last complete state, which resumes once space is back.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from ray import tune
from ray.train.constants import DEFAULT_STORAGE_PATH
from ray.tune.schedulers import TrialScheduler

from steerage_ray import named_objectives, storage
from steerage_ray.checks import integer, optional_integer
from steerage_ray.cluster import (
    check_trial_resources,
    connect,
    release_held_messages,
    trials_that_fit,
)
from steerage_ray.data import (Dataset, check_space_fits, image_filter_matters,
                               load_dataset_spec)
from steerage_ray.evolution import EvolutionResult
from steerage_ray.families import check_family
from steerage_ray.latency import LatencyTable, load_table
from steerage_ray.named_objectives import ObjectiveCosts
from steerage_ray.precision import choices_as_constant
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.schedulers import FINAL_PHASE, FINAL_PHASE_KEY, SparingFinalPhase
from steerage_ray.searchers import SteerageSearcher
from steerage_ray.searchers.steerage import FINAL
from steerage_ray.searchers.tune_space import from_tune
from steerage_ray.space import SearchSpace, preset_for_algorithm
from steerage_ray.strategies.plan import DEFAULT_ALGORITHM
from steerage_ray.trainables import (
    CHECKPOINT_SECONDS,
    METRIC,
    MODE,
    FailurePolicy,
    TrialLost,
    load_checkpoint_state,
    make_trainable,
)
from steerage_ray.training import CONFIG_KEYS, settings_from

logger = logging.getLogger(__name__)

#: Retries of a trial lost to a system failure (Tune's ``FailureConfig``).
MAX_FAILURES = 3
#: Restarts from the last saved state after a trial Tune did not retry (``TrialLost``).
MAX_RESTARTS = 5


class SearchInterrupted(KeyboardInterrupt):
    """The search stopped before its plan was complete (Ctrl-C, or Tune ended early);
    its state is saved at ``experiment_path``: continue it with
    :func:`resume_global_search`."""

    def __init__(self, experiment_path: str, done: int, planned: int) -> None:
        super().__init__(f"global search interrupted after {done} of {planned} trials; "
                         f"its state is saved: continue with resume_global_search("
                         f"{experiment_path!r}, dataset)")
        self.experiment_path, self.done, self.planned = experiment_path, done, planned


@dataclass
class GlobalSearchResult:
    """What a global search found.

    ``best_config``/``best_result``: the final pick (default mode: the architecture the
    ensemble's mean ranks best; paper mode: the EES winner; the best by ``val_acc`` when
    ``final_count > 1``), as the trainable received it and what it
    reported (``val_acc``, ``test_acc``, ``quant_test_acc``, ``params``, ``flops``...).
    ``best_observed_config``/``best_observed_result``: the best trial of any phase
    (:func:`best_trial`: the smallest among equally accurate ones).
    ``trials``: every trial (``SteerageSearcher.observations``). ``round_scores``: the
    predictor's held-out Kendall tau per round and the refit/EES times.
    ``best_state_dict`` / ``best_observed_state_dict``: the trained weights of those two
    (from their last checkpoints; None when checkpoints were turned off).
    ``pareto_front``: the trained architectures no other beats on every objective
    (``SteerageSearcher.pareto_front``), best ``val_acc`` first, one column per
    objective (``val_acc``, ``params``, ...; computed objectives exactly as ``cost_fn``
    gave them), the trial's other reported values and ``config/<key>`` columns. With one
    objective it is the best trial (ties included), so it is never empty after a search
    that trained something: one type for both cases.
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
    pareto_front: pd.DataFrame | None = None

    def trained_weights(self, trial_id: str) -> dict | None:
        """The weights trial ``trial_id`` reported in its last checkpoint (None when
        checkpoints were turned off or the trial is unknown)."""
        by_id = {result.metrics.get("trial_id"): result for result in self.result_grid}
        return _trained_weights(by_id.get(trial_id))


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
    max_failures: int = MAX_FAILURES,
    address: str | None = None,
    storage_path: str | None = None,
    name: str | None = None,
    seed: int = 0,
    scheduler: Any = None,
    verbose: int = 1,
    callbacks: list | None = None,
    checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
    objectives: Sequence[str] | str | None = None,
    latency_table: LatencyTable | str | os.PathLike | None = None,
    reproducible: bool = False,
    **searcher_options: Any,
) -> GlobalSearchResult:
    """Run STEERAGE's global search (Algorithms 1 and 2) on Ray Tune and return its result.

    Args:
        dataset: a ``Dataset``, a dataset name (``"digits"``) or a spec dict.
        family: ``"ffnn"``, ``"lenet"`` or ``"resnet"``.
        space: the search space; default: the family's preset sized for the dataset
            (``ffnn_space(n_features)``, ``lenet_space(image side)``, ``resnet_space()``;
            with the default algorithm the FFNN space may skip dimensionality
            reduction, see ``preset_for_algorithm``).
        budget: total trials (round sizes are scaled to it, see ``SearchPlan``).
        epochs, final_epochs: training epochs of search trials and of the final round
            (default: ``settings_for`` the dataset; ``final_epochs`` defaults to
            ``epochs``). ``training``: other ``TrainSettings`` keys (``lr``, ...).
        cpus_per_trial, gpus_per_trial: resources per trial (fractions allowed).
        max_concurrent_trials: trials in flight at once. Default: as many as the
            cluster's CPUs and GPUs hold right now (Tune would otherwise run a custom
            searcher's trials one at a time). On an autoscaling cluster pass the
            number for the cluster at full size.
        max_failures: retries of a trial lost to a system failure (actor or node died),
            each from the trial's last checkpoint; errors raised by training are never
            retried.
        address: the Ray cluster to join; default: Ray already initialised in this
            process, else an embedded local Ray (never one found on this machine).
        storage_path, name: where Tune writes the experiment (``storage_path/name``;
            use shared storage on a cluster; default ``~/ray_results``). ``name``
            defaults to a timestamped one.
        seed: seeds the searcher and every trial.
        scheduler: a Tune scheduler, e.g. ASHA (early-stopped trials are labelled with
            the best ``val_acc`` they reported). It never stops the final phase, whose
            trial trains the search's answer (``schedulers.SparingFinalPhase``).
        objectives: what to optimise, as ``named_objectives`` names them: None or
            ``["val_acc:max"]`` (one objective, the default search), or e.g.
            ``["val_acc:max", "params:min"]`` (a Pareto front; ``flops:min`` and
            ``latency:min`` too). ``params``/``flops`` are computed exactly before
            training (``ArchitectureCosts``), ``latency`` from ``latency_table`` (a
            ``LatencyTable`` or its file, from ``steerage profile-latency``).
        reproducible: one seed gives one search whatever order trials finish in
            (``SteerageSearcher(reproducible=True)``; this function always sets the
            concurrency limit it needs). Off by default: each proposal then uses every
            result in, so no slot waits and the model is never behind; reproducible,
            it is ``2 x max_concurrent_trials`` results further behind
            (``benchmarks/RESULTS.md``, "Reproducible searches").
        searcher_options: ``SteerageSearcher`` arguments (``count``, ``iter_count``,
            ``iterations``, ``final_count``, ``ees_population``, ...).

    Raises:
        ValueError: a bad argument, dataset, space or training setting, or resources
            the cluster cannot provide, before any trial starts.
        SearchInterrupted: Ctrl-C, or the search ended before its plan was complete.
        StorageFull: the storage ran full; the last complete state is kept.
    """
    check_family(family)
    seed = integer(seed, "seed", 0)
    max_failures = integer(max_failures, "max_failures", 0)
    max_concurrent_trials = optional_integer(max_concurrent_trials,
                                             "max_concurrent_trials", 1)
    final_epochs = optional_integer(final_epochs, "final_epochs", 1)
    data = dataset if isinstance(dataset, Dataset) else load_dataset_spec(dataset)
    constants = _training_constants(family, seed, epochs, training, data.name)
    final_config = dict(searcher_options.pop("final_config", None) or {})
    if final_epochs is not None:
        final_config["epochs"] = final_epochs
    if scheduler is not None:
        scheduler = _sparing_final_phase(scheduler, final_config)
    algorithm = searcher_options.get("algorithm", DEFAULT_ALGORITHM)
    search_space = _search_space(space, family, data, algorithm)
    check_space_fits(search_space, family, data)
    metric, mode, cost_fn = _objectives(objectives, latency_table, family, data)
    if algorithm != "paper":  # the precision is chosen after training (precision.py)
        search_space = choices_as_constant(search_space)
        searcher_options.setdefault("inert_dimensions",
                                    inert_dimensions(search_space, data))
    searcher = SteerageSearcher(search_space, metric, mode, cost_fn=cost_fn,
                                budget=budget, seed=seed, final_config=final_config,
                                reproducible=reproducible, **searcher_options)
    trainable = make_trainable(data, cpus_per_trial=cpus_per_trial,
                               gpus_per_trial=gpus_per_trial,
                               checkpoint_seconds=checkpoint_seconds)
    connect(address)
    check_trial_resources(cpus_per_trial, gpus_per_trial)
    for message in release_held_messages():
        logger.warning(message)
    _quiet_snapshot_warning()
    storage_path = storage_path or DEFAULT_STORAGE_PATH
    filesystem = storage.tune_filesystem(storage_path)
    name = name or f"steerage-{family}-{data.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    tuner = tune.Tuner(
        trainable,
        param_space=constants,
        tune_config=tune.TuneConfig(
            search_alg=searcher, metric=METRIC, mode=MODE,
            # a space smaller than the budget is searched exhaustively, then it ends
            num_samples=max(searcher.plan.total, budget or 0),
            max_concurrent_trials=max_concurrent_trials or trials_that_fit(
                cpus_per_trial, gpus_per_trial),
            scheduler=scheduler,
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage.local_storage_path(storage_path) if filesystem
            else storage_path,
            storage_filesystem=filesystem, verbose=verbose,
            callbacks=[*(callbacks or []), FailurePolicy()],
            failure_config=tune.FailureConfig(max_failures=max_failures),
            # One checkpoint per trial: the latest, which after the last epoch holds the
            # trained weights. Keeping every epoch's would cost gigabytes per search.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    try:
        grid = _fit(tuner, searcher.plan.total)
    except TrialLost as lost:
        path = f"{storage_path.rstrip('/')}/{name}"
        if not tune.Tuner.can_restore(path):
            raise  # lost before Tune saved any state
        logger.warning("%s; restarting the search from its last saved state", lost)
        return resume_global_search(path, data,
                                    cpus_per_trial=cpus_per_trial,
                                    gpus_per_trial=gpus_per_trial,
                                    checkpoint_seconds=checkpoint_seconds)
    _require_complete(grid, searcher)
    return _collect(grid, searcher)


def resume_global_search(path: str, dataset: Dataset | str | Mapping, *,
                         cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                         checkpoint_seconds: float | None = CHECKPOINT_SECONDS,
                         address: str | None = None) -> GlobalSearchResult:
    """Continue an interrupted :func:`global_search` experiment stored at ``path``.

    Give the same dataset (Tune needs the trainable again). Finished trials are kept,
    unfinished ones resume from their last checkpoint under their old trial ids, and
    the searcher continues from its saved state, so the total number of trained
    architectures is what an uninterrupted run trains, none twice. Raises as
    :func:`global_search` does.
    """
    data = dataset if isinstance(dataset, Dataset) else load_dataset_spec(dataset)
    trainable = make_trainable(data, cpus_per_trial=cpus_per_trial,
                               gpus_per_trial=gpus_per_trial,
                               checkpoint_seconds=checkpoint_seconds)
    filesystem = storage.tune_filesystem(path)
    if not tune.Tuner.can_restore(path):
        raise ValueError(f"{path} holds no Tune experiment to resume")
    connect(address)
    check_trial_resources(cpus_per_trial, gpus_per_trial)
    for message in release_held_messages():
        logger.warning(message)
    _quiet_snapshot_warning()
    location = storage.local_storage_path(path) if filesystem else path
    planned = _saved_searcher(location).plan.total
    for restart in range(MAX_RESTARTS + 1):
        try:
            with _patient_restore():
                grid = _fit(tune.Tuner.restore(
                    location, trainable=trainable, resume_unfinished=True,
                    storage_filesystem=filesystem), planned)
            break
        except TrialLost as lost:
            if restart == MAX_RESTARTS:
                raise
            logger.warning("%s; restarting the search from its last saved state", lost)
    searcher = _saved_searcher(grid.experiment_path)
    _require_complete(grid, searcher)
    return _collect(grid, searcher)


#: Seconds the restored searcher waits for a trial it had in flight before it takes the
#: trial for dropped by Tune and proposes its architecture again (see below).
RESUME_GRACE_S = 600.0


@contextlib.contextmanager
def _patient_restore():
    """``Tuner.restore(resume_unfinished=True)`` resumes every trial that was in flight,
    but a resumed trial reports only after its actor has started, loaded its data and
    trained an epoch, which can take far longer than the searcher's default grace
    (``searchers.steerage.RESTORE_GRACE_S``, 10 s, meant for trials Tune *dropped*).
    Past it the searcher proposed those architectures again, so they were trained
    twice and the search ended short of its plan. While resuming, the grace is
    :data:`RESUME_GRACE_S`. The one trial Tune can really drop here, one the searcher
    proposed just before a kill that Tune's saved trial list does not hold yet, the
    searcher finds at once (``SteerageSearcher.restore_from_dir``)."""
    from steerage_ray.searchers import steerage as searcher_module

    default = searcher_module.RESTORE_GRACE_S
    searcher_module.RESTORE_GRACE_S = max(default, RESUME_GRACE_S)
    try:
        yield
    finally:
        searcher_module.RESTORE_GRACE_S = default


def _saved_searcher(path: str) -> SteerageSearcher:
    """The searcher as Tune last saved it in the experiment at ``path`` (a look at it:
    the restore that continues the search is Tune's own)."""
    searcher = SteerageSearcher()
    searcher.restore_from_dir(path, check_tune_trials=False)
    return searcher


def _fit(tuner: tune.Tuner, planned: int) -> tune.ResultGrid:
    """``tuner.fit()``, raising :class:`SearchInterrupted` where Tune received Ctrl-C
    (it stops, saves its state and returns a partial result; ``planned``: the trials
    the search plans, for the message) and
    :class:`~steerage_ray.storage.StorageFull` where the storage ran full.

    Tune replaces the SIGINT handler while it runs and puts back the one it found
    only when a stop signal arrives; it is put back here in every case, so a Ctrl-C
    after the search (e.g. during local search) is not swallowed.
    """
    storage.clear_failures()
    watch = _StopSignalWatch()
    try:
        grid = tuner.fit()
    except Exception as error:
        full = storage.storage_full(error) or storage.first_failure()
        if full is not None:
            raise full from None
        lost = _in_chain(error, TrialLost)  # Tune wraps what a callback raises
        if lost is not None:
            raise lost from None
        raise
    finally:
        interrupted = watch.stop()
    if interrupted:
        raise SearchInterrupted(grid.experiment_path, _progress(grid)[0], planned)
    return grid


def _in_chain(error: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of type ``kind`` in ``error``'s cause/context chain."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class _StopSignalWatch:
    """Tells whether Tune received a stop signal (Ctrl-C / SIGUSR1) while it ran.

    Tune's handler, on a stop signal, restores the SIGINT handler it found when the
    run started: the watch installs a handler of its own before and sees it back
    afterwards. (A second Ctrl-C reaches that handler, which raises
    ``KeyboardInterrupt`` as Python's default does.)
    """

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread() and \
            not int(os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0"))
        if self.active:
            self.original = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum, frame) -> None:
        if callable(self.original) and self.original not in (signal.SIG_IGN,
                                                             signal.SIG_DFL):
            self.original(signum, frame)
        else:
            raise KeyboardInterrupt

    def stop(self) -> bool:
        if not self.active:
            return False
        received = signal.getsignal(signal.SIGINT) == self._handler
        signal.signal(signal.SIGINT, self.original)
        return received


def _progress(grid: tune.ResultGrid) -> tuple[int, int]:
    """Trials that ran to their end (finished or failed for good), trials created."""
    return grid.num_terminated + grid.num_errors, len(grid)


def _require_complete(grid: tune.ResultGrid, searcher: SteerageSearcher) -> None:
    """Raise :class:`SearchInterrupted` unless every planned trial ran to its end."""
    planned = searcher.plan.total
    done, created = _progress(grid)
    trials = searcher.observations
    proposed = trials[trials["trial_id"].notna()] if len(trials) else trials
    finished = int(proposed["status"].isin(("completed", "failed")).sum()) if len(
        proposed) else 0
    if searcher.in_flight or min(created, finished) < planned or done < created:
        raise SearchInterrupted(grid.experiment_path, min(done, finished), planned)


def _search_space(space: SearchSpace | str | Mapping | None, family: str,
                  data: Dataset, algorithm: str) -> SearchSpace:
    """The family's preset (or the named one) sized for the data, as ``algorithm``
    searches it (``preset_for_algorithm``); a Tune param-space dict converted; a
    ``SearchSpace`` as given."""
    preset = family if space is None else space
    if isinstance(preset, SearchSpace):
        return preset
    if isinstance(preset, Mapping):
        return from_tune(preset)
    if not isinstance(preset, str):
        raise ValueError(f"space must be a SearchSpace, a preset name or a Tune "
                         f"param-space dict, got {type(preset).__name__}")
    sizing = {"ffnn": {"n_features": data.n_features},
              "lenet": {"image_size": data.input_shape[-1]}}
    return preset_for_algorithm(preset, algorithm, **sizing.get(preset, {}))


def inert_dimensions(space: SearchSpace, data: Dataset) -> tuple[str, ...]:
    """The dimensions of ``space`` that change neither the network a trial trains on
    ``data`` nor anything the search optimises, which the default algorithm leaves out
    (``SteerageSearcher(inert_dimensions=...)``): ``image_filter`` when no image is
    resized. Searched as a dimension, it made the search train the same network again
    and again, as ``quant_bits`` did before it became the constant ``precision_choices``
    (``precision.choices_as_constant``): in default-mode runs on the tuning seeds, 3-14
    of 50 digits FFNN trials, 2-8 of 40 MNIST-1D trials and 8-15 of 40 digits-images
    LeNet trials repeated a network already trained (2026-12-06). A search whose
    ``constraint`` reads it passes its own ``inert_dimensions`` (e.g. ``()``) among the
    searcher options."""
    if "image_filter" in space.names and not image_filter_matters(space, data):
        return ("image_filter",)
    return ()


def _objectives(objectives: Sequence[str] | str | None,
                latency_table: LatencyTable | str | os.PathLike | None, family: str,
                data: Dataset) -> tuple[Any, Any, ObjectiveCosts | None]:
    """The searcher's ``metric``, ``mode`` and ``cost_fn`` for ``objectives``: the plain
    ``METRIC``/``MODE`` (and no ``cost_fn``) for one objective, so that case is exactly
    the single-objective search."""
    parsed = named_objectives.parse_objectives(
        named_objectives.DEFAULT if objectives is None else objectives, "objectives")
    if not named_objectives.several(parsed):
        if latency_table is not None:
            raise ValueError("latency_table is used by a latency objective only; add "
                             "latency:min to objectives or remove latency_table")
        return METRIC, MODE, None
    table = None
    if named_objectives.needs_latency(parsed):
        table = latency_table if latency_table is None or isinstance(
            latency_table, LatencyTable) else load_table(latency_table)
        named_objectives.check_latency_table(table, family)
    metric, mode = named_objectives.metric_mode(parsed)
    return metric, mode, ObjectiveCosts(family, data.input_shape, data.n_classes, table)


def _training_constants(family: str, seed: int, epochs: int | None,
                        training: Mapping[str, Any] | None, dataset_name: str) -> dict:
    """Constants of every trial's config (Tune merges the searcher's suggestion in),
    checked as ``TrainSettings`` before any trial starts."""
    if training is not None and not isinstance(training, Mapping):
        raise ValueError(f"training must be a dict of TrainSettings keys (e.g. "
                         f"{{'lr': 0.01}}), got {type(training).__name__}")
    training = dict(training or {})
    unknown = sorted(set(training) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"training has unknown key(s) {unknown}; valid keys: "
                         f"{list(CONFIG_KEYS)}")
    if epochs is not None:
        training["epochs"] = epochs
    try:
        settings_from(training, dataset_name, family)
    except ValueError as error:
        field = str(error).split(" ", 1)[0]
        prefix = "" if field == "epochs" and epochs is not None else "training."
        raise ValueError(f"{prefix}{error}") from None
    return {"family": family, "seed": seed, **training}


def _sparing_final_phase(scheduler: Any, final_config: dict) -> SparingFinalPhase:
    """``scheduler`` wrapped so that it never stops the final phase, whose configs get
    the key that marks them (``final_config`` is changed in place)."""
    if not isinstance(scheduler, TrialScheduler):
        raise ValueError(f"scheduler must be a Tune TrialScheduler (e.g. "
                         f"ray.tune.schedulers.ASHAScheduler()), got "
                         f"{type(scheduler).__name__}")
    final_config[FINAL_PHASE_KEY] = FINAL_PHASE
    return SparingFinalPhase(scheduler)


def _quiet_snapshot_warning() -> None:
    """Keeping one checkpoint per trial makes Tune snapshot the experiment after each
    checkpoint (that is what keeps resume exact); its warning about that is noise here."""
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


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
        result_grid=grid, searcher=searcher, pareto_front=_front_table(searcher))


def _front_table(searcher: SteerageSearcher) -> pd.DataFrame:
    """``searcher.pareto_front`` with ``val_acc`` named so in both cases (with one
    objective the searcher calls the label ``metric``)."""
    front = searcher.pareto_front.reset_index(drop=True)
    if METRIC in front:
        return front.drop(columns="metric", errors="ignore")
    return front.rename(columns={"metric": METRIC})


def best_trial(trials: pd.DataFrame, metric: str) -> Hashable:
    """The index of the trial global search ranks first: the highest ``metric``; among
    trials that tie on it, the fewest ``params``, then the earliest.

    Ties are common on small validation sets (30 or more architectures at 100 % on
    wine's 36 validation examples), and the earliest of them was an arbitrary pick. On
    the tuning seeds (3-6; wine, breast cancer, digits and digits images, 15 searches)
    the smallest tied architecture tested better than the earliest in 6 searches and
    equal in 9 (test accuracy as searched: 96.67 % against 96.18 % on average;
    benchmarks/RESULTS.md), and it leaves local search less to prune.
    """
    keys = [metric] + (["params"] if "params" in trials else [])
    order = trials.sort_values(keys, ascending=[False] + [True] * (len(keys) - 1),
                               kind="stable")
    return order.index[0]


def _best_trial(searcher: SteerageSearcher, trials: pd.DataFrame,
                by_id: Mapping[str, tune.Result]) -> dict | None:
    """The searcher's record of the best trial, with the config exactly as the trainable
    received it (Tune merges the param-space constants into the suggestion)."""
    if trials.empty:
        return None
    record = searcher.trial(trials.loc[best_trial(trials, "metric"), "trial_id"])
    if record["trial_id"] in by_id:
        record["config"] = dict(by_id[record["trial_id"]].config)
    return record


def _trained_weights(result: tune.Result | None) -> dict | None:
    """The weights a trial reported (``best_model`` of its last checkpoint)."""
    if result is None or result.checkpoint is None:
        return None
    return load_checkpoint_state(result.checkpoint).get("best_model")
