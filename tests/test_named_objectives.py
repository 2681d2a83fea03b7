"""Objectives by name (``--objectives``), their cost function, and picking the member of
a global-search front that local search starts from (no Ray)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pandas as pd
import pytest

from steerage_ray.complexity_estimate import ArchitectureCosts
from steerage_ray.experiment import ExperimentError, parse_experiment
from steerage_ray.named_objectives import (
    ObjectiveCosts,
    metric_mode,
    parse_objectives,
    several,
)
from steerage_ray.pareto import front_member, knee
from steerage_ray.space import ffnn_space

DIGITS = {"name": "t", "dataset": "digits", "family": "ffnn"}


def test_objectives_are_parsed_to_canonical_name_mode_pairs():
    assert parse_objectives("val_acc:max,params:min") == ("val_acc:max", "params:min")
    assert parse_objectives(["val_acc", "flops", "latency"]) == (
        "val_acc:max", "flops:min", "latency:min")
    assert metric_mode(("val_acc:max", "params:min")) == (["val_acc", "params"],
                                                          ["max", "min"])
    assert not several(("val_acc:max",)) and several(("val_acc:max", "params:min"))


@pytest.mark.parametrize("value, words", [
    ("params:min,val_acc:max", "must start with val_acc:max"),
    ("val_acc:min", "can only be maximised"),
    ("val_acc,params:max", "params:min"),
    ("val_acc,size", "unknown objective 'size'"),
    ("val_acc,params,params", "twice"),
    ([], "list of name:mode"), (3, "list of name:mode")])
def test_bad_objectives_name_the_field_and_the_fix(value, words):
    with pytest.raises(ValueError, match=words) as caught:
        parse_objectives(value, "--objectives")
    assert str(caught.value).startswith("--objectives")


def test_the_experiment_stores_objectives_and_the_local_search_start():
    plain = parse_experiment(DIGITS)
    assert plain.search["objectives"] == ["val_acc:max"]
    assert plain.local_search["start"] is None
    two = parse_experiment({**DIGITS, "search": {"objectives": "val_acc,params"},
                            "local_search": {"start": 2}})
    assert two.search["objectives"] == ["val_acc:max", "params:min"]
    assert parse_experiment(two.to_dict()).to_dict() == two.to_dict()  # resume keeps it
    with pytest.raises(ExperimentError, match="needs several search.objectives"):
        parse_experiment({**DIGITS, "local_search": {"start": "knee"}})
    with pytest.raises(ExperimentError, match="local_search.start"):
        parse_experiment({**DIGITS, "search": {"objectives": ["val_acc", "params"]},
                          "local_search": {"start": "middle"}})
    with pytest.raises(ExperimentError, match="search.latency_table"):
        parse_experiment({**DIGITS, "search": {"latency_table": "t.json"}})


def test_objective_costs_are_the_exact_counts_and_pickle():
    costs = ObjectiveCosts("ffnn", (64,), 10)
    exact = ArchitectureCosts("ffnn", (64,), 10)
    for config in ffnn_space(n_features=64).sobol(5, 0):
        assert costs(config) == exact(config)
    assert pickle.loads(pickle.dumps(costs)) == costs


FRONT = pd.DataFrame({"val_acc": [0.97, 0.95, 0.90, 0.60],
                      "params": [100_000, 10_000, 1_000, 100]})


def test_front_members_by_name_or_row():
    assert front_member(FRONT, "most-accurate", ["params"]) == 0
    assert front_member(FRONT, "smallest", ["params"]) == 3
    assert front_member(FRONT, 2, ["params"]) == 2
    assert front_member(FRONT, "1", ["params"]) == 1
    # knee: sizes on log10 (3 decades -> 0..1), accuracy 0.60..0.97 -> 0..1
    assert knee(FRONT, ["val_acc"], ["params"]) == 2
    assert front_member(FRONT, "knee", ["params"]) == 2
    with pytest.raises(ValueError, match="rows 0..3"):
        front_member(FRONT, 4, ["params"])
    with pytest.raises(ValueError, match="--ls-from must be one of"):
        front_member(FRONT, "middle", ["params"])


def test_the_result_front_names_the_accuracy_val_acc_in_both_cases():
    from steerage_ray.global_search import _front_table

    one = SimpleNamespace(pareto_front=pd.DataFrame({"metric": [0.9], "params": [5]}))
    assert list(_front_table(one).columns) == ["val_acc", "params"]
    two = SimpleNamespace(pareto_front=pd.DataFrame({"metric": [0.9], "val_acc": [0.9],
                                                     "params": [5]}, index=[7]))
    table = _front_table(two)
    assert list(table.columns) == ["val_acc", "params"] and list(table.index) == [0]
