"""Local search on Ray: every scheme is one Ray task, all running in parallel.

The candidate and the dataset go to the object store once and every task reads them
from there. Each task asks for one GPU when the cluster has GPUs (``num_gpus_per_task``)
and trains on ``steerage_ray.training.select_device()``, which falls back to the CPU
when CUDA is unusable (e.g. fake GPUs of a simulated cluster). A failing task does not
sink the run: its scheme and error are listed in ``LocalSearchResult.failures`` and the
other schemes' results are returned. This is the only module of ``local_search`` that
imports Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import ray

from steerage_ray.checks import integer
from steerage_ray.cluster import connect
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.prepare import prepare_for_config
from steerage_ray.data.specs import load_dataset_spec
from steerage_ray.local_search.candidate import FAMILY_SCHEMES, Candidate
from steerage_ray.local_search.nest import NestOptions
from steerage_ray.local_search.result import LocalSearchResult, schemes_pareto
from steerage_ray.local_search.scann import ScannOptions, SchemeResult
from steerage_ray.local_search.schemes import build_scheme_options, run_one_scheme
from steerage_ray.training import TrainSettings, settings_for

_scheme_task = ray.remote(run_one_scheme)


def run_local_search(
        candidate: Candidate | Mapping, dataset: Dataset | str | Mapping, *,
        family: str | None = None,
        schemes: Sequence[str] | None = None, iterations: int = 20,
        settings: TrainSettings | None = None, seed: int = 0,
        num_gpus_per_task: float | None = None, num_cpus_per_task: float = 1,
        growth_ratio: float | None = None, pruning_ratio: float | None = None,
        accuracy_tolerance: float = 0.0,
        scheme_options: Mapping[str, ScannOptions | NestOptions | Mapping] | None = None,
        fault_injection: Mapping[str, str] | None = None) -> LocalSearchResult:
    """Run local search schemes on ``candidate`` as parallel Ray tasks.

    - ``dataset``: the data the candidate expects (after ``prepare_for_config``), or a
      dataset name or spec (``"digits"``), loaded and prepared for the candidate's
      config here;
    - ``schemes``: default ``("A", "B", "C")`` for ``ffnn`` and ``("A", "B", "C",
      "nest")`` for ``lenet`` (A/B/C then act on the CNN's classifier);
    - ``iterations``: operations per scheme, each followed by training and validation (an
      upper bound: a scheme whose pruning guard has undone enough steps stops earlier);
    - ``settings``: per-step training (default: ``settings_for(dataset.name, family,
      epochs=10)``); ``seed`` seeds every scheme;
    - ``num_gpus_per_task``: None = 1 if the cluster has GPUs, else 0;
    - ``growth_ratio`` / ``pruning_ratio`` / ``accuracy_tolerance``: run-wide option
      values; ``scheme_options`` overrides per scheme (dict of :class:`ScannOptions` or,
      for ``"nest"``, :class:`NestOptions` fields, or the options objects themselves);
    - ``fault_injection``: test hook, ``{scheme: message}`` makes that scheme's task raise
      ``RuntimeError(message)`` on the worker, to exercise failure handling for real.

    Everything is validated before a task starts; an embedded local Ray is started if
    Ray is not initialised. On Ctrl-C the scheme tasks are cancelled before the
    ``KeyboardInterrupt`` goes on.
    """
    candidate = Candidate.from_value(candidate, family)
    if not isinstance(dataset, Dataset):
        dataset = prepare_for_config(load_dataset_spec(dataset), candidate.config, seed=seed)
    schemes = _checked_schemes(schemes, candidate.family)
    iterations = integer(iterations, "iterations", 1)
    if num_gpus_per_task is not None and num_gpus_per_task < 0:
        raise ValueError("num_gpus_per_task must be None (auto) or >= 0, "
                         f"got {num_gpus_per_task!r}")
    if num_cpus_per_task <= 0:
        raise ValueError(f"num_cpus_per_task must be > 0, got {num_cpus_per_task!r}")
    options = build_scheme_options(schemes, scheme_options, growth_ratio, pruning_ratio,
                                   accuracy_tolerance)
    faults = dict(fault_injection or {})
    if set(faults) - set(schemes):
        raise ValueError(f"fault_injection names scheme(s) {sorted(set(faults) - set(schemes))} "
                         f"that are not run; running {list(schemes)}")
    settings = settings or settings_for(dataset.name, candidate.family, epochs=10)
    candidate.build(dataset, seed)  # shape mismatches fail here, before any task starts

    connect()
    if num_gpus_per_task is None:
        num_gpus_per_task = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    threads = max(1, int(num_cpus_per_task))
    candidate_ref, dataset_ref = ray.put(candidate), ray.put(dataset)
    task = _scheme_task.options(num_cpus=num_cpus_per_task, num_gpus=num_gpus_per_task)
    pending = {
        task.remote(scheme, candidate_ref, dataset_ref, iterations, settings, options[scheme],
                    seed, threads, faults.get(scheme)): scheme
        for scheme in schemes
    }
    results, infos, failures = _wait_for(pending)
    # in the order asked for, not the order the tasks finished: ties on the Pareto front
    # then go the same way in every run (a resumed run equals an uninterrupted one)
    results = {s: results[s] for s in schemes if s in results}
    return LocalSearchResult(
        scheme_results=results,
        pareto=schemes_pareto(results),
        failures=failures,
        tasks=pd.DataFrame(infos, columns=["scheme", "started", "finished", "device", "pid"]),
        input_shape=dataset.input_shape,
    )


def _checked_schemes(schemes: Sequence[str] | None, family: str) -> tuple[str, ...]:
    """The schemes to run (default: every scheme of the family), checked."""
    valid = FAMILY_SCHEMES[family]
    if isinstance(schemes, str) or (schemes is not None and not schemes):
        raise ValueError(f"schemes must be a non-empty sequence of names from {valid}, "
                         f"got {schemes!r}")
    schemes = tuple(valid if schemes is None else schemes)
    unknown = [s for s in schemes if s not in valid]
    if unknown:
        raise ValueError(f"unknown scheme(s) {unknown} for family {family!r}; "
                         f"valid schemes: {valid}")
    if len(set(schemes)) != len(schemes):
        raise ValueError(f"schemes must not repeat, got {list(schemes)}")
    return schemes


def _wait_for(pending: dict) -> tuple[dict[str, SchemeResult], list[dict], dict[str, str]]:
    """Results, task infos and failures of the scheme tasks, as each one finishes."""
    results: dict[str, SchemeResult] = {}
    infos, failures = [], {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                scheme = pending.pop(ref)
                try:
                    results[scheme], info = ray.get(ref)
                    infos.append(info)
                except Exception as error:  # noqa: BLE001 - reported, not fatal
                    failures[scheme] = _error_message(error)
    except KeyboardInterrupt:
        for ref in pending:  # nothing keeps training after Ctrl-C
            ray.cancel(ref, force=True)
        raise
    return results, infos, failures


def _error_message(error: Exception) -> str:
    """``Type: message`` of the root cause of a task failure."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"
