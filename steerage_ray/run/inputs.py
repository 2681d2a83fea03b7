"""What a run starts from, all taken from its experiment: the dataset, the search space
and the training settings of each phase."""

from __future__ import annotations

import os

from steerage_ray.data import (
    Dataset,
    check_space_fits,
    dataset_source,
    load_dataset_spec,
)
from steerage_ray.data.specs import PATH_KEYS, expand_paths
from steerage_ray.experiment import Experiment, parse_experiment
from steerage_ray.latency import load_table
from steerage_ray.named_objectives import ObjectiveCosts, check_latency_table, needs_latency
from steerage_ray.searchers.tune_space import load_space_file
from steerage_ray.space import SearchSpace, preset_for_algorithm
from steerage_ray.training import CONFIG_KEYS, TrainSettings, settings_from


def with_dataset_path(experiment: Experiment, path: str | None,
                      label_column: str | None) -> Experiment:
    """Point a file-based experiment (csv/npz/image folder) or a torchvision root at
    ``path``; a label column may be given for CSV files."""
    if path is None and label_column is None:
        return experiment
    dataset = dict(experiment.dataset)
    if path is not None:
        source = dataset_source(dataset)
        dataset["root" if source == "name" else source] = path
    if label_column is not None:
        if "csv" not in dataset:
            raise ValueError("--label-column applies to CSV datasets only; experiment "
                             f"{experiment.name!r} uses {sorted(dataset)}")
        dataset["label_column"] = label_column
    return parse_experiment({**experiment.to_dict(), "dataset": dataset},
                            source=experiment.source)


def with_absolute_paths(experiment: Experiment) -> Experiment:
    """The experiment with relative dataset and space-file paths made absolute (from
    the current directory, where they are read now), so that the experiment directory
    records paths that `steerage resume` finds from any directory."""
    dataset = {key: _absolute(value) if key in PATH_KEYS and isinstance(value, str)
               else value for key, value in experiment.dataset.items()}
    space = dict(experiment.space)
    if isinstance(space.get("file"), str):
        space["file"] = _absolute(space["file"])
    search = dict(experiment.search)
    if isinstance(search.get("latency_table"), str):
        search["latency_table"] = _absolute(search["latency_table"])
    if dataset == experiment.dataset and space == experiment.space \
            and search == experiment.search:
        return experiment
    return parse_experiment({**experiment.to_dict(), "dataset": dataset, "space": space,
                             "search": search}, source=experiment.source)


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def load_experiment_data(experiment: Experiment) -> Dataset:
    """The experiment's dataset (paths expanded); errors name the dataset field."""
    spec = expand_paths(experiment.dataset)
    if "name" in spec:
        spec.setdefault("seed", experiment.seed)
    return load_dataset_spec(spec)


def experiment_space(experiment: Experiment, data: Dataset) -> SearchSpace:
    """The search space: a preset sized for the data, or a user's YAML space file."""
    space = _experiment_space(experiment, data)
    try:
        check_space_fits(space, experiment.family, data)
    except ValueError as error:
        file = experiment.space.get("file")
        where = f"file {file}" if file else f"preset {experiment.space.get('preset')!r}"
        message = str(error)
        message = (message[len("space"):] if message.startswith(("space ", "space:"))
                   else f": {message}")
        raise ValueError(f"space {where}{message}") from None
    return space


def check_objectives(experiment: Experiment, data: Dataset, space: SearchSpace) -> None:
    """What a search's objectives need, before Ray starts: a latency objective's table
    (read, of the experiment's family, and holding the layers of the space's
    architectures: one sample is estimated)."""
    if not needs_latency(experiment.search["objectives"]):
        return
    path = experiment.search["latency_table"]
    table = None if path is None else load_table(path)
    check_latency_table(table, experiment.family)
    ObjectiveCosts(experiment.family, data.input_shape, data.n_classes, table)(
        space.random(1, 0)[0])


def _experiment_space(experiment: Experiment, data: Dataset) -> SearchSpace:
    options = dict(experiment.space)
    if "file" in options:
        return load_space_file(options["file"])
    preset = options.pop("preset")
    if preset == "ffnn":
        given = options.get("n_features")
        if given is not None and given != data.n_features:
            raise ValueError(f"space.n_features is {given} but dataset "
                             f"{data.name!r} has {data.n_features} features; fix or "
                             f"remove space.n_features")
        options["n_features"] = data.n_features
    if preset == "lenet" and data.kind == "image":
        options.setdefault("image_size", data.input_shape[-1])
    try:
        return preset_for_algorithm(preset, experiment.search["algorithm"], **options)
    except (ValueError, TypeError) as error:
        raise ValueError(f"space: {error}") from None


def training_settings(experiment: Experiment, data: Dataset,
                      epochs: int | None = None) -> TrainSettings:
    """``settings_for`` the data, overridden by the experiment's training section, with
    ``epochs`` for the phase (default: the section's ``epochs``)."""
    return settings_from(experiment.training, data.name, experiment.family,
                         seed=experiment.seed, epochs=epochs or experiment.training["epochs"])


def training_overrides(experiment: Experiment) -> dict:
    """The training settings the experiment fixes, except the epochs (phase-specific):
    what every global-search trial gets on top of ``settings_for``."""
    return {key: experiment.training[key] for key in CONFIG_KEYS
            if key != "epochs" and experiment.training.get(key) is not None}
