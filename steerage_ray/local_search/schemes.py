"""What each local-search scheme runs with (options per scheme) and how one scheme runs
on the candidate (the body of a scheme task). No Ray here: ``tasks`` runs these bodies as
Ray tasks."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from steerage_ray.data.dataset import Dataset
from steerage_ray.local_search.candidate import Candidate, sparse_start
from steerage_ray.local_search.nest import NestOptions, run_nest
from steerage_ray.local_search.scann import ScannOptions, SchemeResult, run_scheme
from steerage_ray.training import TrainSettings, select_device, torch_threads


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


def run_one_scheme(scheme: str, candidate: Candidate, dataset: Dataset, iterations: int,
                   settings: TrainSettings, options: ScannOptions | NestOptions, seed: int,
                   num_threads: int, fault: str | None) -> tuple[SchemeResult, dict]:
    """Run one scheme on the candidate where this process runs: the body of a local-search
    Ray task, a plain function so that it also runs (and is tested) without Ray.

    Trains on ``select_device(settings.device)`` with ``num_threads`` torch threads
    unless ``settings`` fixes them; ``fault`` (a test hook) raises ``RuntimeError(fault)``
    instead. Returns the scheme's result and where and when it ran.
    """
    started = time.time()
    if fault is not None:
        raise RuntimeError(fault)
    device = select_device(settings.device)
    settings = replace(settings, device=str(device),
                       num_threads=settings.num_threads or num_threads)
    model = sparse_start(candidate, scheme, dataset, seed).to(device)
    pretrained = candidate.state_dict is not None
    with torch_threads(settings.num_threads):
        if scheme == "nest":
            result = run_nest(model, dataset, iterations=iterations, settings=settings,
                              options=options, seed=seed, pretrained=pretrained,
                              precision=candidate.precision)
        else:
            result = run_scheme(scheme, model, dataset, iterations=iterations,
                                settings=settings, options=options, seed=seed,
                                pretrained=pretrained, precision=candidate.precision)
    info = dict(scheme=scheme, started=started, finished=time.time(), device=str(device),
                pid=os.getpid())
    return result, info
