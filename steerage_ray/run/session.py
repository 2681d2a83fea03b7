"""The Ray session of a run: start or join Ray, and fit per-trial resources to it."""

from __future__ import annotations

from dataclasses import replace

import ray

from steerage_ray.experiment import Experiment


def start_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address``, or start an embedded local Ray (never an
    unrelated one already running on this machine); nothing if Ray is running here."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", include_dashboard=False, configure_logging=False,
                 log_to_driver=False)


def resolve_resources(experiment: Experiment) -> Experiment:
    """The experiment with per-trial GPUs decided for the running Ray cluster.

    ``gpus_per_trial`` left unset means one GPU per trial when any node has a GPU (one
    trial per GPU on a multi-GPU machine), none otherwise. Per-trial resources no node
    can provide are refused with a message naming the field.
    """
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return fit_resources(experiment, cpus=max((n.get("CPU", 0) for n in nodes), default=0),
                         gpus=max((n.get("GPU", 0) for n in nodes), default=0))


def fit_resources(experiment: Experiment, cpus: float, gpus: float) -> Experiment:
    """:func:`resolve_resources` for a cluster whose largest node has ``cpus`` CPUs and
    ``gpus`` GPUs."""
    if experiment.resources["gpus_per_trial"] is None:
        experiment = replace(experiment, resources={
            **experiment.resources, "gpus_per_trial": 1 if gpus >= 1 else 0})
    wanted = experiment.resources
    if wanted["gpus_per_trial"] > gpus:
        raise ValueError(f"resources.gpus_per_trial={wanted['gpus_per_trial']} but the "
                         f"largest node of this Ray cluster has {gpus:g} GPU(s); lower "
                         f"--gpus-per-trial or add GPU nodes")
    if wanted["cpus_per_trial"] > cpus:
        raise ValueError(f"resources.cpus_per_trial={wanted['cpus_per_trial']} but the "
                         f"largest node of this Ray cluster has {cpus:g} CPU(s); lower "
                         f"--cpus-per-trial")
    return experiment
