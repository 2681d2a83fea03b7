"""Experiment files: one YAML document describes a whole STEERAGE run.

An experiment names the dataset, the model family and its search space, the global-search
budget (the paper's knobs), training settings, resources per trial, local search and the
baseline to compare against. Bundled experiments live in ``steerage_ray/experiments``
and are addressed by name (``digits-ffnn``); any other path is read as a YAML file.

Validation happens here, before Ray starts, so a typo costs one clear line instead of
a failed cluster run: unknown keys, wrong types and impossible values raise
:class:`ExperimentError` naming the offending field.

The ``training`` section is ``TrainSettings``' own vocabulary: its keys are
``training.CONFIG_KEYS`` plus ``final_epochs`` (the final round's and the baseline's
epochs), and its values are checked by ``TrainSettings`` itself. Dataset specs are those
of ``data.load_dataset_spec``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from steerage_ray.checks import is_integer
from steerage_ray.families import FAMILIES

# Section name -> {key: (accepted types, default)}. ``None`` default = optional, unset.
# The training section is derived from TrainSettings instead (see _validate_training).
_NUMBER = (int, float)
_SECTIONS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "search": {
        # "steerage" (the default mode) or "paper" (Algorithms 1 and 2 exactly).
        "algorithm": ((str,), "steerage"),
        "count": ((int,), 2048),
        # Unset sizes are decided by strategies.plan.resolve_plan: paper mode takes the
        # paper's 100 / 3 / 1 without a budget and scales them to fit one; the default
        # mode splits the budget (401 when unset) into design, guided and final.
        "budget": ((int,), None),
        "final_count": ((int,), None),
        "n_initial": ((int,), None),
        "iter_count": ((int,), None),
        "iterations": ((int,), None),
        "refit_fraction": (_NUMBER, None),
        # EES: None = the algorithm's own (paper 100 x 200 at rho 0.1; default mode
        # 32 x 10 at 0.2 per candidate refresh).
        "ees_population": ((int,), None),
        "ees_generations": ((int,), None),
        "mutation_prob": (_NUMBER, None),
        "max_params": ((int,), None),
        "max_flops": ((int,), None),
        # What to optimise (named_objectives): ["val_acc:max"] is the single-objective
        # search; more names search a Pareto front, e.g. ["val_acc:max", "params:min"].
        "objectives": ((list, str), ["val_acc:max"]),
        # A latency table (`steerage profile-latency`) for a latency objective.
        "latency_table": ((str,), None),
        # One seed, one search at any concurrency (SteerageSearcher's reproducible):
        # each proposal waits for the results its position says it sees.
        "reproducible": ((bool,), False),
    },
    "resources": {
        "cpus_per_trial": (_NUMBER, 1),
        "gpus_per_trial": (_NUMBER, None),  # None: 1 when the cluster has GPUs, else 0
        "max_concurrent_trials": ((int,), None),
        # retries of a trial lost to a system failure (actor or node died), each from
        # its last checkpoint; errors raised by training are never retried
        "max_failures": ((int,), 3),
    },
    "local_search": {
        "enabled": ((bool,), True),
        "schemes": ((list,), None),
        "iterations": ((int,), 20),  # an upper bound: the pruning guard may stop earlier
        "epochs": ((int,), None),
        "growth_ratio": (_NUMBER, None),
        "pruning_ratio": (_NUMBER, None),
        # The compact GS+LS point: the smallest Pareto point whose validation accuracy
        # is within this many points (percentage points) of the most accurate's.
        "select_tolerance": (_NUMBER, 0.5),
        # With several objectives: the front member local search starts from (knee,
        # most-accurate, smallest, or a row of pareto_front.csv); None = knee.
        "start": ((str, int), None),
    },
}
# The experiment's own training defaults; every other TrainSettings field left unset
# means "settings_for the dataset and family decide".
_TRAINING_DEFAULTS = {"epochs": 10, "final_epochs": None, "batch_size": 128}
_POSITIVE = {
    "count", "iter_count", "final_count", "budget", "ees_population", "ees_generations",
    "n_initial", "max_params", "max_flops", "cpus_per_trial", "iterations", "epochs",
    "max_concurrent_trials",
}
_TOP_LEVEL = {"name", "description", "dataset", "family", "space", "baseline", "seed",
              "training", *_SECTIONS}


class ExperimentError(ValueError):
    """An experiment file or value that cannot be run; the message names the field."""


@dataclass
class Experiment:
    """A validated experiment. ``source`` is where it was read from (for reports)."""

    name: str
    dataset: dict
    family: str
    space: dict
    search: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    local_search: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    seed: int = 0
    description: str = ""
    source: str = ""

    def search_plan(self):
        """How many architectures each phase of the global search trains (a
        ``SearchPlan`` in paper mode, a ``GuidedPlan`` in the default mode)."""
        return _search_plan(self.search, self.source)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("source")
        return data

    def with_overrides(self, unset: tuple[str, ...] = (), **sections: dict) -> "Experiment":
        """A re-validated copy with some section keys replaced (CLI flags use this);
        ``unset`` names search keys to reset to "decided by the plan" (None)."""
        data = self.to_dict()
        data["search"].update(dict.fromkeys(unset))
        for section, values in sections.items():
            if isinstance(data.get(section), dict):
                data[section] = {**data[section], **{k: v for k, v in values.items()
                                                     if v is not None}}
            elif values is not None:
                data[section] = values
        return parse_experiment(data, source=self.source)


def bundled_experiments() -> list[str]:
    """Names of the experiment files shipped with steerage-ray."""
    folder = resources.files("steerage_ray") / "experiments"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_experiment(name_or_path: str | Path) -> Experiment:
    """Load a bundled experiment by name, or a YAML file by path, and validate it."""
    text, source = _read_experiment_text(str(name_or_path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ExperimentError(f"experiment file {source} is not valid YAML{line}: "
                              f"{getattr(error, 'problem', error)}") from None
    return parse_experiment(data, source=source)


def _read_experiment_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ExperimentError(f"experiment file not found: {path}")
        return path.read_text(), str(path)
    bundled = resources.files("steerage_ray") / "experiments" / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise ExperimentError(
            f"unknown experiment {name_or_path!r}: give a YAML file path or one of "
            f"{', '.join(bundled_experiments())}")
    return bundled.read_text(), f"bundled:{name_or_path}"


def parse_experiment(data: Any, source: str = "<dict>") -> Experiment:
    """Validate a parsed experiment document and fill in defaults."""
    if not isinstance(data, dict):
        raise ExperimentError(f"experiment {source} must be a YAML mapping, got "
                              f"{type(data).__name__}")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ExperimentError(f"experiment {source}: unknown field(s) {unknown}; valid "
                              f"fields are {sorted(_TOP_LEVEL)}")
    for required in ("name", "dataset", "family"):
        if required not in data:
            raise ExperimentError(f"experiment {source}: missing required field "
                                  f"{required!r}")
    family = data["family"]
    if family not in FAMILIES:
        raise ExperimentError(f"experiment {source}: family must be one of {FAMILIES}, "
                              f"got {family!r}")
    seed = data.get("seed", 0)
    if not is_integer(seed) or seed < 0:
        raise ExperimentError(f"experiment {source}: seed must be a non-negative "
                              f"integer, got {seed!r}")
    sections = {name: _validate_section(name, data.get(name), source)
                for name in _SECTIONS}
    sections["training"] = _validate_training(data.get("training"), source)
    _check_search_counts(sections["search"], source)
    _check_objectives(sections, source)
    _check_local_search(sections["local_search"], family, source)
    return Experiment(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        dataset=_validate_dataset(data["dataset"], source),
        family=family,
        space=_validate_space(data.get("space", family), source),
        baseline=_mapping(data.get("baseline", {}), "baseline", source),
        seed=int(seed),
        source=source,
        **sections,
    )


def _mapping(value: Any, field_name: str, source: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExperimentError(f"experiment {source}: {field_name} must be a mapping, "
                              f"got {type(value).__name__}")
    return copy.deepcopy(value)


def _validate_section(name: str, value: Any, source: str) -> dict:
    given = _mapping(value, name, source)
    schema = _SECTIONS[name]
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise ExperimentError(f"experiment {source}: unknown key(s) {unknown} in "
                              f"{name}; valid keys are {sorted(schema)}")
    result = {}
    for key, (types, default) in schema.items():
        value = given.get(key, default)
        if value is None:
            result[key] = None
            continue
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise ExperimentError(f"experiment {source}: {name}.{key} must be {expected}, "
                                  f"got {value!r}")
        if key in _POSITIVE and value <= 0:
            raise ExperimentError(f"experiment {source}: {name}.{key} must be > 0, "
                                  f"got {value!r}")
        if key in ("gpus_per_trial", "max_failures") and value < 0:
            raise ExperimentError(f"experiment {source}: {name}.{key} must be >= 0, "
                                  f"got {value!r}")
        if key == "select_tolerance" and not 0 <= value <= 100:
            raise ExperimentError(f"experiment {source}: {name}.{key} must be in [0, 100] "
                                  f"(points of accuracy), got {value!r}")
        result[key] = value
    return result


def _validate_training(value: Any, source: str) -> dict:
    """The training section: ``TrainSettings`` fields an experiment may set (checked by
    ``TrainSettings``) plus ``final_epochs``; unset ones are None."""
    from steerage_ray.training import CONFIG_KEYS, TrainSettings  # late: `steerage -h`

    given = _mapping(value, "training", source)
    keys = ["epochs", "final_epochs", *(key for key in CONFIG_KEYS if key != "epochs")]
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise ExperimentError(f"experiment {source}: unknown key(s) {unknown} in "
                              f"training; valid keys are {sorted(keys)}")
    section = {key: given.get(key, _TRAINING_DEFAULTS.get(key)) for key in keys}
    final_epochs = section["final_epochs"]
    if final_epochs is not None and not (is_integer(final_epochs) and final_epochs >= 1):
        raise ExperimentError(f"experiment {source}: training.final_epochs must be None "
                              f"or an integer >= 1, got {final_epochs!r}")
    try:
        TrainSettings(**{key: section[key] for key in CONFIG_KEYS
                         if section[key] is not None})
    except ValueError as error:
        raise ExperimentError(f"experiment {source}: training.{error}") from None
    return section


def _check_search_counts(search: dict, source: str) -> None:
    from steerage_ray.strategies.plan import ALGORITHMS, GUIDED_ONLY, PAPER_ONLY

    algorithm = search["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ExperimentError(f"experiment {source}: search.algorithm must be one of "
                              f"{ALGORITHMS}, got {algorithm!r}")
    foreign = GUIDED_ONLY if algorithm == "paper" else PAPER_ONLY
    wrong = [key for key in foreign if search.get(key) is not None]
    if wrong:
        other = "steerage" if algorithm == "paper" else "paper"
        raise ExperimentError(f"experiment {source}: search.{wrong[0]} applies to "
                              f"search.algorithm: {other} only; remove it or set "
                              f"search.algorithm: {other}")
    mutation, refit = search["mutation_prob"], search["refit_fraction"]
    if mutation is not None and not 0.0 <= mutation <= 1.0:
        raise ExperimentError(f"experiment {source}: search.mutation_prob must be in "
                              f"[0, 1], got {mutation!r}")
    if refit is not None and not 0.0 < refit <= 1.0:
        raise ExperimentError(f"experiment {source}: search.refit_fraction must be in "
                              f"(0, 1], got {refit!r}")
    plan = _search_plan(search, source)
    if algorithm == "paper" and plan.pool_demand > search["count"]:
        raise ExperimentError(
            f"experiment {source}: search.count ({search['count']}) is smaller than the "
            f"{plan.pool_demand} pool members the rounds train ({plan.initial} random + "
            f"{plan.iterations} x {plan.iter_count} predicted); raise search.count or "
            f"lower search.iter_count / search.budget")


def _check_objectives(sections: dict, source: str) -> None:
    """``search.objectives`` canonical (a list of name:mode), ``search.latency_table``
    only with a latency objective, ``local_search.start`` only with several."""
    from steerage_ray import named_objectives
    from steerage_ray.pareto import FRONT_PICKS

    search = sections["search"]
    try:
        search["objectives"] = list(named_objectives.parse_objectives(search["objectives"]))
    except ValueError as error:
        raise ExperimentError(f"experiment {source}: {error}") from None
    if search["latency_table"] is not None and \
            not named_objectives.needs_latency(search["objectives"]):
        raise ExperimentError(f"experiment {source}: search.latency_table is used by a "
                              f"latency objective only; add latency:min to "
                              f"search.objectives or remove it")
    start = sections["local_search"]["start"]
    if start is None:
        return
    if not (start in FRONT_PICKS or is_integer(start) and start >= 0):
        raise ExperimentError(f"experiment {source}: local_search.start (--ls-from) must "
                              f"be one of {', '.join(FRONT_PICKS)} or a row index of "
                              f"pareto_front.csv, got {start!r}")
    if not named_objectives.several(search["objectives"]):
        raise ExperimentError(f"experiment {source}: local_search.start (--ls-from) picks "
                              f"a member of the Pareto front; it needs several "
                              f"search.objectives (--objectives {named_objectives.EXAMPLE})")


def _check_local_search(section: dict, family: str, source: str) -> None:
    """Schemes and ratios checked here, not after the global search has run."""
    from steerage_ray.local_search.candidate import FAMILY_SCHEMES  # late: imports torch

    for key in ("growth_ratio", "pruning_ratio"):
        value = section[key]
        if value is not None and not 0 < value < 1:
            raise ExperimentError(f"experiment {source}: local_search.{key} must be a "
                                  f"number strictly between 0 and 1, got {value!r}")
    if not section["enabled"]:
        return
    if family not in FAMILY_SCHEMES:
        raise ExperimentError(f"experiment {source}: local search does not support family "
                              f"{family!r} (only {sorted(FAMILY_SCHEMES)}); set "
                              f"local_search: {{enabled: false}}")
    schemes, valid = section["schemes"], FAMILY_SCHEMES[family]
    if schemes is None:
        return
    unknown = [scheme for scheme in schemes if scheme not in valid]
    if not schemes or unknown:
        raise ExperimentError(f"experiment {source}: local_search.schemes must be a "
                              f"non-empty list of {list(valid)} for family {family!r}, got "
                              f"{schemes!r}")
    if len(set(schemes)) != len(schemes):
        raise ExperimentError(f"experiment {source}: local_search.schemes must not repeat, "
                              f"got {schemes!r}")


def _search_plan(search: dict, source: str):
    from steerage_ray.strategies.plan import resolve_plan  # late: keeps `steerage -h` fast

    try:
        return resolve_plan(search["algorithm"], search["budget"],
                            iter_count=search["iter_count"],
                            iterations=search["iterations"],
                            final_count=search["final_count"],
                            n_initial=search["n_initial"])
    except ValueError as error:
        raise ExperimentError(f"experiment {source}: search: {error}") from None


def _validate_dataset(value: Any, source: str) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    from steerage_ray.data.specs import dataset_source  # late: keeps `steerage -h` fast

    dataset = _mapping(value, "dataset", source)
    try:
        dataset_source(dataset)
    except ValueError as error:
        raise ExperimentError(f"experiment {source}: {error}") from None
    if "csv" in dataset and "label_column" not in dataset:
        raise ExperimentError(f"experiment {source}: dataset.label_column is required "
                              f"with dataset.csv")
    return dataset


def _validate_space(value: Any, source: str) -> dict:
    if isinstance(value, str):
        value = {"preset": value}
    space = _mapping(value, "space", source)
    if ("preset" in space) == ("file" in space):
        raise ExperimentError(f"experiment {source}: space needs exactly one of preset "
                              f"(e.g. ffnn, lenet, resnet, resnet18) or file (a YAML "
                              f"Tune-style space); got {sorted(space)}")
    return space
