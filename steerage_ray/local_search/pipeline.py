"""Local search on Ray: every scheme is one Ray task, all running in parallel.

The candidate and the dataset go to the object store once and every task reads them
from there. Each task asks for one GPU when the cluster has GPUs (``num_gpus_per_task``)
and trains on ``steerage_ray.training.select_device()``, which falls back to the CPU
when CUDA is unusable (e.g. fake GPUs of a simulated cluster). A failing task does not
sink the run: its scheme and error are listed in ``LocalSearchResult.failures`` and the
other schemes' results are returned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd
import ray
import torch
from torch import nn

from steerage_ray.data.dataset import Dataset
from steerage_ray.local_search.export import ExportedModel, export_model
from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.nest import NestOptions, SparseConvNet, run_nest
from steerage_ray.local_search.scann import SCANN_SCHEMES, ScannOptions, SchemeResult, run_scheme
from steerage_ray.models import build_model
from steerage_ray.training import TrainSettings, select_device, settings_for

FAMILY_SCHEMES = {"ffnn": SCANN_SCHEMES, "lenet": (*SCANN_SCHEMES, "nest")}
PARETO_COLUMNS = ("scheme", "step", "operation", "val_acc", "test_acc", "params", "flops")


@dataclass
class Candidate:
    """The architecture local search starts from, normally the global-search winner.

    ``family`` is ``"ffnn"`` or ``"lenet"``; ``config`` the flat architecture config
    (docs/ARCHITECTURE.md preset keys; ``quant_bits`` sets the export precision);
    ``state_dict`` the trained weights of ``build_model(family, config, input_shape,
    n_classes)``, or None to have every scheme train the candidate first.
    """

    family: str
    config: dict
    state_dict: dict | None = None

    @classmethod
    def from_value(cls, value: "Candidate | Mapping", family: str | None = None) -> "Candidate":
        """A Candidate from itself or a dict with keys ``family``, ``config`` and
        optionally ``state_dict``; ``family`` fills in or must match."""
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"candidate has unknown key(s) {sorted(unknown)}; expected "
                                 "'family', 'config' and optionally 'state_dict'")
            if "config" not in value:
                raise ValueError("candidate must have a 'config' (the architecture dict)")
            value = cls(family=value.get("family", family), config=dict(value["config"]),
                        state_dict=value.get("state_dict"))
        elif not isinstance(value, Candidate):
            raise ValueError(f"candidate must be a Candidate or a dict, got {type(value).__name__}")
        if family is not None and value.family != family:
            raise ValueError(f"family={family!r} does not match candidate.family={value.family!r}")
        if value.family not in FAMILY_SCHEMES:
            raise ValueError(f"candidate family must be one of {tuple(FAMILY_SCHEMES)} for local "
                             f"search, got {value.family!r}")
        return value

    @property
    def quant_bits(self) -> int:
        return int(self.config.get("quant_bits") or 32)

    def build(self, dataset: Dataset, seed: int = 0) -> nn.Module:
        """The dense candidate for ``dataset`` (its weights loaded when given)."""
        model = build_model(self.family, self.config, dataset.input_shape, dataset.n_classes,
                            seed=seed)
        if self.state_dict is not None:
            try:
                model.load_state_dict(self.state_dict)
            except RuntimeError as error:
                raise ValueError(
                    f"candidate.state_dict does not fit the {self.family} model that "
                    f"candidate.config builds for input shape {dataset.input_shape}; was the "
                    f"dataset prepared for the config (data.prepare_for_config)? {error}"
                ) from error
        return model


def sparse_start(candidate: Candidate, scheme: str, dataset: Dataset, seed: int) -> nn.Module:
    """The candidate as the sparse model ``scheme`` works on: skip connections for A and
    B, a plain MLP (Scheme C's) for C and NeST's head."""
    dense = candidate.build(dataset, seed)
    skip = scheme in ("A", "B")
    if candidate.family == "ffnn":
        linears = [m for m in dense if isinstance(m, nn.Linear)]
        return SparseFeedForward.from_linears(linears, skip_connections=skip)
    return SparseConvNet.from_lenet(dense, dataset.input_shape, skip_connections=skip)


@dataclass
class LocalSearchResult:
    """Everything the schemes produced.

    ``scheme_results`` maps each finished scheme to its :class:`SchemeResult` (history
    and per-step models); ``pareto`` is the Pareto set over (validation accuracy max,
    parameters min) across all schemes, with test accuracy and FLOPs per point;
    ``failures`` maps failed schemes to their error; ``tasks`` has one row per task
    with wall-clock ``started``/``finished`` (Unix seconds), ``device`` and ``pid``.
    """

    scheme_results: dict[str, SchemeResult]
    pareto: pd.DataFrame
    failures: dict[str, str]
    tasks: pd.DataFrame
    input_shape: tuple[int, ...]
    quant_bits: int = 32

    @property
    def histories(self) -> dict[str, pd.DataFrame]:
        return {scheme: result.history for scheme, result in self.scheme_results.items()}

    def model(self, scheme: str, step: int | None = None) -> nn.Module:
        """The model of ``scheme`` after ``step`` (default: the scheme's best)."""
        if scheme not in self.scheme_results:
            raise ValueError(f"no result for scheme {scheme!r}; finished: "
                             f"{sorted(self.scheme_results)}")
        result = self.scheme_results[scheme]
        return result.best_model if step is None else result.models[step]

    def best(self) -> pd.Series:
        """The Pareto point with the highest validation accuracy (then fewest params)."""
        if self.pareto.empty:
            raise ValueError("no scheme finished, so there is no best model; see failures")
        return self.pareto.sort_values(["val_acc", "params"], ascending=[False, True]).iloc[0]

    def export(self, scheme: str | None = None, step: int | None = None,
               **options) -> ExportedModel:
        """Export a model (default: :meth:`best`) at the candidate's ``quant_bits``."""
        if scheme is None:
            point = self.best()
            scheme, step = point["scheme"], int(point["step"])
        options.setdefault("quant_bits", self.quant_bits)
        return export_model(self.model(scheme, step), self.input_shape, **options)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated in (``val_acc`` higher, ``params`` lower), sorted by params.

    Of rows with identical accuracy and size, the first is kept.
    """
    ordered = points.sort_values(["params", "val_acc"], ascending=[True, False], kind="stable")
    ordered = ordered.drop_duplicates(["params", "val_acc"])
    best_so_far = -np.inf
    keep = []
    for accuracy in ordered["val_acc"]:
        keep.append(accuracy > best_so_far)
        best_so_far = max(best_so_far, accuracy)
    return ordered[keep].reset_index(drop=True)


def build_scheme_options(schemes: Sequence[str], overrides: Mapping[str, object] | None,
                   growth_ratio: float | None, pruning_ratio: float | None,
                   accuracy_tolerance: float) -> dict[str, ScannOptions | NestOptions]:
    """Options per scheme: per-scheme ``overrides`` (an options object or a dict of
    fields) over the run-wide ratios and tolerance over the defaults."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(schemes)
    if unknown:
        raise ValueError(f"scheme_options given for scheme(s) {sorted(unknown)} that are not "
                         f"run; running {list(schemes)}")
    options = {}
    for scheme in schemes:
        given = overrides.get(scheme, {})
        if isinstance(given, (ScannOptions, NestOptions)):
            options[scheme] = given
            continue
        if not isinstance(given, Mapping):
            raise ValueError(f"scheme_options[{scheme!r}] must be a dict or an options object, "
                             f"got {type(given).__name__}")
        scann = {"accuracy_tolerance": accuracy_tolerance}
        if growth_ratio is not None:
            scann["growth_ratio"] = growth_ratio
        if pruning_ratio is not None:
            scann["pruning_ratio"] = pruning_ratio
        try:
            if scheme == "nest":
                nest = {"accuracy_tolerance": accuracy_tolerance}
                if growth_ratio is not None:
                    nest["conv_growth_ratio"] = growth_ratio
                if pruning_ratio is not None:
                    nest["conv_pruning_ratio"] = pruning_ratio
                head = given.get("head", {})
                head = head if isinstance(head, ScannOptions) else ScannOptions(**{**scann, **head})
                options[scheme] = NestOptions(**{**nest, **given, "head": head})
            else:
                options[scheme] = ScannOptions(**{**scann, **given})
        except TypeError as error:
            raise ValueError(f"scheme_options[{scheme!r}]: {error}") from error
    return options


def _run_one_scheme(scheme: str, candidate: Candidate, dataset: Dataset, iterations: int,
                    settings: TrainSettings, options: ScannOptions | NestOptions, seed: int,
                    num_threads: int, fault: str | None) -> tuple[SchemeResult, dict]:
    """Body of a scheme task (plain function so it also runs without Ray)."""
    started = time.time()
    if fault is not None:
        raise RuntimeError(fault)
    device = select_device(settings.device)
    settings = replace(settings, device=str(device),
                       num_threads=settings.num_threads or num_threads)
    model = sparse_start(candidate, scheme, dataset, seed).to(device)
    pretrained = candidate.state_dict is not None
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.num_threads)
    try:
        if scheme == "nest":
            result = run_nest(model, dataset, iterations=iterations, settings=settings,
                              options=options, seed=seed, pretrained=pretrained)
        else:
            result = run_scheme(scheme, model, dataset, iterations=iterations,
                                settings=settings, options=options, seed=seed,
                                pretrained=pretrained)
    finally:
        torch.set_num_threads(previous_threads)
    info = dict(scheme=scheme, started=started, finished=time.time(), device=str(device),
                pid=os.getpid())
    return result, info


_scheme_task = ray.remote(_run_one_scheme)


def run(candidate: Candidate | Mapping, dataset: Dataset, *, family: str | None = None,
        schemes: Sequence[str] | None = None, iterations: int = 6,
        settings: TrainSettings | None = None, seed: int = 0,
        num_gpus_per_task: float | None = None, num_cpus_per_task: float = 1,
        growth_ratio: float | None = None, pruning_ratio: float | None = None,
        accuracy_tolerance: float = 0.0,
        scheme_options: Mapping[str, ScannOptions | NestOptions | Mapping] | None = None,
        fault_injection: Mapping[str, str] | None = None) -> LocalSearchResult:
    """Run local search schemes on ``candidate`` as parallel Ray tasks.

    - ``dataset``: the data the candidate expects (after ``prepare_for_config``);
    - ``schemes``: default ``("A", "B", "C")`` for ``ffnn`` and ``("A", "B", "C",
      "nest")`` for ``lenet`` (A/B/C then act on the CNN's classifier);
    - ``iterations``: operations per scheme, each followed by training and validation;
    - ``settings``: per-step training (default: ``settings_for(dataset.name, family,
      epochs=10)``); ``seed`` seeds every scheme;
    - ``num_gpus_per_task``: None = 1 if the cluster has GPUs, else 0;
    - ``growth_ratio`` / ``pruning_ratio`` / ``accuracy_tolerance``: run-wide option
      values; ``scheme_options`` overrides per scheme (dict of :class:`ScannOptions` or,
      for ``"nest"``, :class:`NestOptions` fields, or the options objects themselves);
    - ``fault_injection``: test hook, ``{scheme: message}`` makes that scheme's task raise
      ``RuntimeError(message)`` on the worker, to exercise failure handling for real.

    Everything is validated before a task starts; Ray is initialised if it is not.
    """
    candidate = Candidate.from_value(candidate, family)
    valid = FAMILY_SCHEMES[candidate.family]
    if isinstance(schemes, str) or (schemes is not None and not schemes):
        raise ValueError(f"schemes must be a non-empty sequence of names from {valid}, "
                         f"got {schemes!r}")
    schemes = tuple(valid if schemes is None else schemes)
    unknown = [s for s in schemes if s not in valid]
    if unknown:
        raise ValueError(f"unknown scheme(s) {unknown} for family {candidate.family!r}; "
                         f"valid schemes: {valid}")
    if len(set(schemes)) != len(schemes):
        raise ValueError(f"schemes must not repeat, got {list(schemes)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
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

    if not ray.is_initialized():
        ray.init()
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
    results: dict[str, SchemeResult] = {}
    infos, failures = [], {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            scheme = pending.pop(ref)
            try:
                results[scheme], info = ray.get(ref)
                infos.append(info)
            except Exception as error:  # noqa: BLE001 - a failed scheme is reported, not fatal
                failures[scheme] = _error_message(error)
    return LocalSearchResult(
        scheme_results={s: results[s] for s in schemes if s in results},
        pareto=_pareto_of(results),
        failures=failures,
        tasks=pd.DataFrame(infos, columns=["scheme", "started", "finished", "device", "pid"]),
        input_shape=dataset.input_shape,
        quant_bits=candidate.quant_bits,
    )


def _pareto_of(results: Mapping[str, SchemeResult]) -> pd.DataFrame:
    frames = [result.history.assign(scheme=scheme) for scheme, result in results.items()]
    if not frames:
        return pd.DataFrame(columns=list(PARETO_COLUMNS))
    return pareto_front(pd.concat(frames, ignore_index=True)[list(PARETO_COLUMNS)])


def _error_message(error: Exception) -> str:
    """``Type: message`` of the root cause of a task failure."""
    cause = getattr(error, "cause", None) or error
    return f"{type(cause).__name__}: {cause}"
