"""Experiment files: every bundled one validates; bad files fail with a named field."""

import pytest

from steerage_ray.experiment import (
    ExperimentError,
    bundled_experiments,
    load_experiment,
    parse_experiment,
)

MINIMAL = {"name": "t", "dataset": {"name": "digits"}, "family": "ffnn"}
PAPER = {**MINIMAL, "search": {"algorithm": "paper"}}


def test_bundled_experiments_cover_the_paper_and_the_small_presets():
    names = set(bundled_experiments())
    assert {"digits-ffnn", "digits-cnn", "mnist1d-ffnn", "uci-ffnn", "mnist-ffnn",
            "mnist-lenet5", "cifar10-resnet18", "cifar10-resnet-depth"} <= names


@pytest.mark.parametrize("name", bundled_experiments())
def test_every_bundled_experiment_loads_and_validates(name):
    experiment = load_experiment(name)
    assert experiment.name == name
    plan = experiment.search_plan()
    if experiment.search["algorithm"] == "paper":
        assert plan.pool_demand <= experiment.search["count"]
    else:
        assert plan.total == experiment.search["budget"]
    assert experiment.training["epochs"] >= 1
    # Round trip through a plain dict gives the same experiment.
    assert parse_experiment(experiment.to_dict()).to_dict() == experiment.to_dict()


def test_defaults_are_the_papers():
    experiment = parse_experiment(PAPER)
    assert experiment.search["count"] == 2048
    plan = experiment.search_plan()
    assert (plan.initial, plan.iter_count, plan.iterations, plan.final_count) == \
        (100, 100, 3, 1)
    # EES sizes are left to the algorithm: the paper's 100 x 200 in paper mode
    assert experiment.search["ees_population"] is None
    assert experiment.space == {"preset": "ffnn"}


def test_the_default_algorithm_splits_the_papers_401_trials():
    experiment = parse_experiment(MINIMAL)
    assert experiment.search["algorithm"] == "steerage"
    assert experiment.search["reproducible"] is False  # asynchronous: no slot waits
    plan = experiment.search_plan()
    assert (plan.total, plan.initial, plan.final) == (401, 10, 1)
    assert parse_experiment({**MINIMAL, "search": {"budget": 30}}).search_plan().total == 30


@pytest.mark.parametrize("change, field", [
    ({"family": "transformer"}, "family"),
    ({"search": {"iter_count": 0}}, "search.iter_count"),
    ({"search": {"algorithm": "paper", "count": 10, "iter_count": 20}}, "search.count"),
    ({"search": {"algorithm": "paper", "iter_count": 10, "iterations": 3, "budget": 12}},
     "search: budget"),
    ({"search": {"iter_count": 10}}, "search.iter_count applies to search.algorithm: paper"),
    ({"search": {"algorithm": "paper", "n_initial": 5}}, "search.n_initial"),
    ({"search": {"algorithm": "bayes"}}, "search.algorithm"),
    ({"search": {"mutation_prob": 1.5}}, "search.mutation_prob"),
    ({"search": {"reproducible": "yes"}}, "search.reproducible"),
    ({"search": {"itercount": 5}}, "itercount"),
    ({"training": {"epochs": "ten"}}, "training.epochs"),
    ({"training": {"final_epochs": 0}}, "training.final_epochs"),
    ({"training": {"schedule": "step"}}, "training.schedule"),
    ({"training": {"optimizer": "rmsprop"}}, "training.optimizer"),
    ({"training": {"patience": 0}}, "training.patience"),
    ({"training": {"seed": 3}}, "seed"),
    ({"resources": {"gpus_per_trial": -1}}, "resources.gpus_per_trial"),
    ({"dataset": {"csv": "x.csv"}}, "dataset.label_column"),
    ({"dataset": {}}, "dataset"),
    ({"space": {"preset": "ffnn", "file": "s.yaml"}}, "space"),
    ({"seed": -3}, "seed"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_values_name_the_field(change, field):
    with pytest.raises(ExperimentError, match=field.replace(".", r"\.")):
        parse_experiment({**MINIMAL, **change})


def test_missing_required_field_is_named():
    with pytest.raises(ExperimentError, match="'family'"):
        parse_experiment({"name": "t", "dataset": "digits"})


def test_unknown_name_lists_the_bundled_ones():
    with pytest.raises(ExperimentError, match="digits-ffnn"):
        load_experiment("no-such-experiment")


def test_missing_file_and_malformed_yaml(tmp_path):
    with pytest.raises(ExperimentError, match="not found"):
        load_experiment(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsearch: {count: [1, 2\n")
    with pytest.raises(ExperimentError, match="not valid YAML"):
        load_experiment(bad)


def test_overrides_are_revalidated():
    experiment = parse_experiment(PAPER)
    changed = experiment.with_overrides(search={"count": 64, "iter_count": 8})
    assert changed.search["count"] == 64 and experiment.search["count"] == 2048
    with pytest.raises(ExperimentError, match="search.count"):
        experiment.with_overrides(search={"count": 4, "iter_count": 8})


def test_a_budget_scales_the_rounds_that_are_not_given():
    experiment = parse_experiment({**MINIMAL, "search": {"algorithm": "paper", "count": 256,
                                                         "budget": 41}})
    plan = experiment.search_plan()
    assert plan.total == 41 and plan.iterations == 3 and plan.final_count == 1


def test_a_budget_override_lets_the_file_round_sizes_scale():
    experiment = load_experiment("mnist-lenet5")  # fixes iter_count 100, iterations 3
    scaled = experiment.with_overrides(search={"budget": 12},
                                       unset=("iter_count", "iterations"))
    assert scaled.search_plan().total == 12
    with pytest.raises(ExperimentError, match="search: budget"):
        experiment.with_overrides(search={"budget": 12})  # explicit sizes win: too small


def test_the_training_section_is_the_settings_a_config_may_set():
    from steerage_ray.training import CONFIG_KEYS

    experiment = parse_experiment({**MINIMAL, "training": {"schedule": "cosine",
                                                           "momentum": 0.5}})
    assert set(experiment.training) == {*CONFIG_KEYS, "final_epochs"}
    assert experiment.training["schedule"] == "cosine"
    assert (experiment.training["epochs"], experiment.training["batch_size"]) == (10, 128)
    assert experiment.training["lr"] is None  # unset: settings_for decides



@pytest.mark.parametrize("flags, expected", [([], False), (["--no-reproducible"], False),
                                             (["--reproducible"], True)])
def test_the_command_line_sets_reproducible(flags, expected):
    from steerage_ray.cli import _overrides, build_parser

    args = build_parser().parse_args(["search", "-e", "digits-ffnn", *flags])
    overridden = parse_experiment(MINIMAL).with_overrides(**_overrides(args))
    assert overridden.search["reproducible"] is expected
