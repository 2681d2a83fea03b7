"""`steerage search --objectives val_acc:max,params:min` end to end on a real Ray with
real training on digits: the front file, local search from a chosen member, the plot,
and exporting a front member."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from steerage_ray.cli import main
from steerage_ray.complexity_estimate import ArchitectureCosts
from steerage_ray.pareto import non_dominated

pytestmark = pytest.mark.slow  # real Ray and real training, end to end

# two epochs: a trial's first result lacks params, which Tune must not insist on
TINY = ["--budget", "8", "--epochs", "2", "--final-epochs", "1", "--ls-iterations", "1"]


@pytest.fixture(scope="module")
def front_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("mo") / "digits"
    assert main(["search", "-e", "digits-ffnn", *TINY, "--objectives",
                 "val_acc:max,params:min", "--ls-from", "smallest", "-o", str(out)]) == 0
    return out


def test_the_front_is_non_dominated_with_exact_params(front_run):
    front = pd.read_csv(front_run / "pareto_front.csv")
    trials = pd.read_csv(front_run / "trials.csv")
    assert len(front) >= 1 and set(front["trial_id"]) <= set(trials["trial_id"])
    done = trials[trials["status"] == "completed"]
    values = np.column_stack([done["val_acc"], -done["params"]])
    expected = set(done.iloc[non_dominated(values)]["trial_id"])
    assert set(front["trial_id"]) == expected
    saved = torch.load(front_run / "pareto_front.pt", weights_only=False)
    costs = ArchitectureCosts("ffnn", (64,), 10)
    for config, params in zip(saved["configs"], front["params"]):
        assert costs(config)["params"] == params
    assert all(state is not None for state in saved["states"])
    experiment = yaml.safe_load((front_run / "experiment.yaml").read_text())
    assert experiment["search"]["objectives"] == ["val_acc:max", "params:min"]
    assert experiment["local_search"]["start"] == "smallest"


def test_local_search_starts_from_the_smallest_member(front_run):
    front = pd.read_csv(front_run / "pareto_front.csv")
    start = json.loads((front_run / "local_search" / "start.json").read_text())
    assert start["from"] == "smallest"
    assert start["index"] == int(front["params"].idxmin())
    assert start["result"]["params"] == front["params"].min()
    assert (front_run / "local_search" / "pareto.csv").is_file()
    assert (front_run / "plots" / "accuracy_vs_params.png").is_file()


def test_export_writes_a_front_member(front_run, tmp_path, capsys):
    out = tmp_path / "front0.pt"
    assert main(["export", str(front_run), "--front", "0", "--format", "state_dict",
                 "--out", str(out)]) == 0
    assert out.is_file()
    front = pd.read_csv(front_run / "pareto_front.csv")
    assert main(["export", str(front_run), "--front", str(len(front))]) == 2
    assert "--front must be a row index" in capsys.readouterr().err


def test_a_latency_objective_uses_the_table_profiled_into_the_directory(ray_session,
                                                                        tmp_path):
    out = tmp_path / "latency"
    assert main(["profile-latency", "-e", "digits-ffnn", "-o", str(out),
                 "--threads", "1"]) == 0
    assert main(["search", "-e", "digits-ffnn", "--budget", "5", "--epochs", "2",
                 "--final-epochs", "1", "--no-local-search", "--objectives",
                 "val_acc:max,latency:min", "-o", str(out)]) == 0
    experiment = yaml.safe_load((out / "experiment.yaml").read_text())
    assert experiment["search"]["latency_table"] == str(out / "latency-ffnn-cpu-b1.json")
    from steerage_ray.latency import estimate_latency, load_table

    table = load_table(out / "latency-ffnn-cpu-b1.json")
    front = pd.read_csv(out / "pareto_front.csv")
    configs = torch.load(out / "pareto_front.pt", weights_only=False)["configs"]
    for config, seconds in zip(configs, front["latency"]):
        assert estimate_latency(table, "ffnn", config, (64,), 10) == pytest.approx(seconds)
