"""The Ray session of a run: start or join Ray, and fit per-trial resources to it.

The checks themselves live in ``steerage_ray.cluster``, shared with the Python API
(``global_search``); this module applies them to an ``Experiment``.
"""

from __future__ import annotations

from dataclasses import replace

from steerage_ray.cluster import check_trial_resources, connect, largest_node
from steerage_ray.experiment import Experiment


def start_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address``, or start an embedded local Ray (never an
    unrelated one already running on this machine); nothing if Ray is running here.
    An address nothing answers at is refused within seconds (one line)."""
    connect(address)


def resolve_resources(experiment: Experiment) -> Experiment:
    """The experiment with per-trial GPUs decided for the running Ray cluster.

    ``gpus_per_trial`` left unset means one GPU per trial when any node has a GPU (one
    trial per GPU on a multi-GPU machine), none otherwise. Per-trial resources no node
    can provide are refused with a message naming the field.
    """
    cpus, gpus = largest_node()
    return fit_resources(experiment, cpus=cpus, gpus=gpus)


def fit_resources(experiment: Experiment, cpus: float, gpus: float) -> Experiment:
    """:func:`resolve_resources` for a cluster whose largest node has ``cpus`` CPUs and
    ``gpus`` GPUs."""
    if experiment.resources["gpus_per_trial"] is None:
        experiment = replace(experiment, resources={
            **experiment.resources, "gpus_per_trial": 1 if gpus >= 1 else 0})
    wanted = experiment.resources
    check_trial_resources(wanted["cpus_per_trial"], wanted["gpus_per_trial"], cpus=cpus,
                          gpus=gpus, prefix="resources.")
    return experiment
