"""Every malformed input is one clear line and nothing else (issue 10).

A table of malformed inputs to the ``steerage`` command and to the Python API. Each CLI
case must exit with code 2 and print exactly one line on stderr, naming the field, with
no traceback, and leave every file that existed before byte for byte as it was (and add
none). Each API case must raise one ``ValueError`` whose one-line message names the
field. Cases marked ``ray`` need a running Ray (resources are checked against the
cluster); every other case must fail before Ray starts, which the tests enforce by
making any start of Ray fail the test. Extend the table with every new input surface.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from steerage_ray.cli import main

# ---------------------------------------------------------------- the workspace
DIGITS = {"name": "t", "dataset": "digits", "family": "ffnn",
          "baseline": {"hidden_sizes": [8]}, "training": {"epochs": 1}}
CSV_ROWS = "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))


def _experiment(tmp: Path, name: str, **changes) -> str:
    data = {**DIGITS, **changes}
    for key in [k for k, v in data.items() if v is None]:
        del data[key]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _csv_experiment(tmp: Path, name: str, text: str | bytes, label: str = "label") -> str:
    data = tmp / f"{name}.csv"
    data.write_bytes(text if isinstance(text, bytes) else text.encode())
    return _experiment(tmp, name, dataset={"csv": str(data), "label_column": label},
                       baseline={"hidden_sizes": [4]})


def _space_experiment(tmp: Path, name: str, text: str) -> str:
    space = tmp / f"{name}-space.yaml"
    space.write_text(text)
    return _experiment(tmp, name, space={"file": str(space)})


def _finished(tmp: Path, local_search: bool = True) -> str:
    """An experiment directory as a finished run leaves it (written without Ray)."""
    from steerage_ray.experiment import parse_experiment
    from steerage_ray.run import ExperimentDir

    run_dir = ExperimentDir(tmp / "done")
    run_dir.create(parse_experiment(DIGITS))
    pd_rows = "trial_id,phase,status,val_acc,config/num_layers\na,initial,completed,0.9,1\n"
    run_dir.file("trials.csv").write_text(pd_rows)
    run_dir.write_json("global_winner.json", {"config": {"num_layers": 1, "neurons_1": 50},
                                              "result": {"val_acc": 0.9}})
    for phase in ("baseline", "global_search", *(("local_search",) if local_search else ())):
        run_dir.mark_done(phase, 1.0)
    if local_search:
        run_dir.file("local_search").mkdir()
        run_dir.file("local_search", "history.csv").write_text("scheme,step\nC,1\n")
        run_dir.file("local_search", "pareto.csv").write_text(
            "scheme,step,val_acc,params\nC,1,0.9,100\n")
    return str(run_dir.path)


def _unfinished(tmp: Path) -> str:
    from steerage_ray.experiment import parse_experiment
    from steerage_ray.run import ExperimentDir

    run_dir = ExperimentDir(tmp / "half")
    run_dir.create(parse_experiment(DIGITS))
    run_dir.mark_done("baseline", 1.0)
    return str(run_dir.path)


def _file(tmp: Path, name: str, text: str = "x") -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def _full_folder(tmp: Path) -> str:
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "trials.csv").write_text("the user's own file\n")
    return str(folder)


def _npz(tmp: Path) -> str:
    np.savez(tmp / "a.npz", features=np.zeros((10, 3)), labels=np.zeros(10))
    return _experiment(tmp, "npz", dataset={"npz": str(tmp / "a.npz")})


S = ["search"]
OUT = ["-o", "{tmp}/out"]
# (id, argv (a function of the workspace), text the error line must contain)
CLI_CASES = [
    # -------------------------------------------------- the experiment file
    ("unknown-experiment", lambda t: S + ["-e", "no-such-preset"] + OUT, "digits-ffnn"),
    ("missing-file", lambda t: S + ["-e", f"{t}/absent.yaml"] + OUT, "absent.yaml"),
    ("broken-yaml", lambda t: S + ["-e", _file(t, "b.yaml", "name: x\nsearch: {a: [1\n")]
     + OUT, "not valid YAML"),
    ("yaml-list", lambda t: S + ["-e", _file(t, "l.yaml", "- 1\n- 2\n")] + OUT,
     "YAML mapping"),
    ("unknown-field", lambda t: S + ["-e", _experiment(t, "u", epochs=3)] + OUT,
     "unknown field"),
    ("missing-family", lambda t: S + ["-e", _experiment(t, "f", family=None)] + OUT,
     "family"),
    ("unknown-family", lambda t: S + ["-e", _experiment(t, "f", family="transformer")]
     + OUT, "family"),
    ("file-seed", lambda t: S + ["-e", _experiment(t, "s", seed=-1)] + OUT, "seed"),
    ("search-unknown", lambda t: S + ["-e", _experiment(t, "s", search={"budgett": 3})]
     + OUT, "budgett"),
    ("search-count-type", lambda t: S + ["-e", _experiment(t, "s", search={"count": "many"})]
     + OUT, "search.count"),
    ("search-budget-0", lambda t: S + ["-e", _experiment(t, "s", search={"budget": 0})]
     + OUT, "search.budget"),
    ("search-algorithm", lambda t: S + ["-e", _experiment(t, "s", search={
        "algorithm": "tpe"})] + OUT, "search.algorithm"),
    ("search-mutation", lambda t: S + ["-e", _experiment(t, "s", search={
        "mutation_prob": 2})] + OUT, "search.mutation_prob"),
    ("search-paper-knob", lambda t: S + ["-e", _experiment(t, "s", search={
        "iter_count": 3})] + OUT, "search.iter_count"),
    ("search-pool-too-small", lambda t: S + ["-e", _experiment(t, "s", search={
        "algorithm": "paper", "count": 10, "budget": 400})] + OUT, "search.count"),
    ("training-optimizer", lambda t: S + ["-e", _experiment(t, "o", training={
        "optimizer": "adamw9"})] + OUT, "training.optimizer"),
    ("training-lr", lambda t: S + ["-e", _experiment(t, "o", training={"lr": -1})] + OUT,
     "training.lr"),
    ("training-batch", lambda t: S + ["-e", _experiment(t, "o", training={
        "batch_size": "big"})] + OUT, "training.batch_size"),
    ("training-epochs", lambda t: S + ["-e", _experiment(t, "o", training={"epochs": 0})]
     + OUT, "training.epochs"),
    ("training-final-epochs", lambda t: S + ["-e", _experiment(t, "o", training={
        "final_epochs": 0})] + OUT, "training.final_epochs"),
    ("training-unknown", lambda t: S + ["-e", _experiment(t, "o", training={
        "learning_rate": 0.1})] + OUT, "learning_rate"),
    ("cpus-0", lambda t: S + ["-e", _experiment(t, "r", resources={"cpus_per_trial": 0})]
     + OUT, "resources.cpus_per_trial"),
    ("gpus-negative", lambda t: S + ["-e", _experiment(t, "r", resources={
        "gpus_per_trial": -1})] + OUT, "resources.gpus_per_trial"),
    ("concurrency-0", lambda t: S + ["-e", _experiment(t, "r", resources={
        "max_concurrent_trials": 0})] + OUT, "resources.max_concurrent_trials"),
    ("max-failures", lambda t: S + ["-e", _experiment(t, "r", resources={
        "max_failures": -1})] + OUT, "resources.max_failures"),
    ("schemes-unknown", lambda t: S + ["-e", _experiment(t, "l", local_search={
        "schemes": ["Z"]})] + OUT, "local_search.schemes"),
    ("schemes-nest-on-ffnn", lambda t: S + ["-e", _experiment(t, "l", local_search={
        "schemes": ["nest"]})] + OUT, "local_search.schemes"),
    ("schemes-repeated", lambda t: S + ["-e", _experiment(t, "l", local_search={
        "schemes": ["A", "A"]})] + OUT, "local_search.schemes"),
    ("ls-iterations-0", lambda t: S + ["-e", _experiment(t, "l", local_search={
        "iterations": 0})] + OUT, "local_search.iterations"),
    ("ls-growth-ratio", lambda t: S + ["-e", _experiment(t, "l", local_search={
        "growth_ratio": 1.5})] + OUT, "local_search.growth_ratio"),
    ("ls-family", lambda t: S + ["-e", _experiment(t, "l", family="resnet",
                                                   dataset="digits_images")] + OUT,
     "local_search"),
    # -------------------------------------------------- the space
    ("space-preset", lambda t: S + ["-e", _experiment(t, "p", space={
        "preset": "transformer"})] + OUT, "transformer"),
    ("space-both", lambda t: S + ["-e", _experiment(t, "p", space={
        "preset": "ffnn", "file": "x.yaml"})] + OUT, "space"),
    ("space-file-missing", lambda t: S + ["-e", _experiment(t, "p", space={
        "file": f"{t}/nospace.yaml"})] + OUT, "nospace.yaml"),
    ("space-file-yaml", lambda t: S + ["-e", _space_experiment(t, "p", "a: [1\n")] + OUT,
     "space file"),
    ("space-family-keys", lambda t: S + ["-e", _space_experiment(
        t, "p", "num_layers: {randint: [1, 3]}\n")] + OUT, "neurons_1"),
    ("space-sampler-args", lambda t: S + ["-e", _space_experiment(
        t, "p", "num_layers: {randint: 3}\n")] + OUT, "num_layers.randint"),
    ("space-quant-bits", lambda t: S + ["-e", _space_experiment(
        t, "p", "num_layers: 1\nneurons_1: {choice: [8, 16]}\ndr_method: null\n"
                "dr_ratio: null\nquant_bits: {choice: [8, 12]}\n")] + OUT,
     "quant_bits must be a choice among"),
    ("space-n-features", lambda t: S + ["-e", _experiment(t, "p", space={
        "preset": "ffnn", "n_features": 10})] + OUT, "space.n_features"),
    ("lenet-on-tabular", lambda t: S + ["-e", _experiment(t, "p", family="lenet",
                                                          local_search={"enabled": False})]
     + OUT, "image dataset"),
    # -------------------------------------------------- the data
    ("dataset-name", lambda t: S + ["-e", _experiment(t, "d", dataset="digitz")] + OUT,
     "digitz"),
    ("dataset-two-sources", lambda t: S + ["-e", _experiment(t, "d", dataset={
        "name": "digits", "csv": "a.csv"})] + OUT, "dataset spec"),
    ("dataset-no-label-column", lambda t: S + ["-e", _experiment(t, "d", dataset={
        "csv": "a.csv"})] + OUT, "dataset.label_column"),
    ("dataset-path-missing", lambda t: S + ["-e", "uci-ffnn", "--dataset-path",
                                            f"{t}/none.csv"] + OUT, "none.csv"),
    ("label-column-not-csv", lambda t: S + ["--label-column", "y"] + OUT, "--label-column"),
    ("csv-header-only", lambda t: S + ["-e", _csv_experiment(t, "c", "a,b,label\n")] + OUT,
     "no data rows"),
    ("csv-empty", lambda t: S + ["-e", _csv_experiment(t, "c", "")] + OUT, "c.csv"),
    ("csv-binary", lambda t: S + ["-e", _csv_experiment(t, "c", bytes(range(256)) * 4)]
     + OUT, "c.csv"),
    ("csv-ragged", lambda t: S + ["-e", _csv_experiment(t, "c", "a,b,label\n1,2,0\n1,2,3,4\n")]
     + OUT, "c.csv"),
    ("csv-one-class", lambda t: S + ["-e", _csv_experiment(
        t, "c", "a,b,label\n" + "".join(f"{i},{i},1\n" for i in range(30)))] + OUT,
     "single class"),
    ("csv-label-absent", lambda t: S + ["-e", _csv_experiment(t, "c", "a,b,y\n" + CSV_ROWS)]
     + OUT, "label_column"),
    ("csv-not-numeric", lambda t: S + ["-e", _csv_experiment(
        t, "c", "a,b,label\n" + "".join(f"x{i},{i},{i % 2}\n" for i in range(30)))] + OUT,
     "not numeric"),
    ("csv-missing-values", lambda t: S + ["-e", _csv_experiment(
        t, "c", "a,b,label\n,1,0\n" + CSV_ROWS)] + OUT, "missing values"),
    ("csv-only-label", lambda t: S + ["-e", _csv_experiment(
        t, "c", "label\n" + "".join(f"{i % 2}\n" for i in range(30)))] + OUT,
     "feature columns"),
    ("npz-keys", lambda t: S + ["-e", _npz(t)] + OUT, "a.npz"),
    # -------------------------------------------------- the baseline
    ("baseline-missing", lambda t: S + ["-e", _experiment(t, "b", baseline={})] + OUT,
     "baseline"),
    ("baseline-sizes", lambda t: S + ["-e", _experiment(t, "b", baseline={
        "hidden_sizes": [0]})] + OUT, "baseline.hidden_sizes"),
    ("baseline-unknown", lambda t: S + ["-e", _experiment(t, "b", baseline={
        "hidden": [8]})] + OUT, "baseline"),
    # -------------------------------------------------- flags
    ("flag-budget-text", lambda t: S + ["--budget", "x"] + OUT, "--budget"),
    ("flag-budget-0", lambda t: S + ["--budget", "0"] + OUT, "--budget"),
    ("flag-epochs", lambda t: S + ["--epochs", "-3"] + OUT, "--epochs"),
    ("flag-seed", lambda t: S + ["--seed", "-1"] + OUT, "--seed"),
    ("flag-concurrency", lambda t: S + ["--max-concurrent-trials", "0"] + OUT,
     "--max-concurrent-trials"),
    ("flag-max-failures", lambda t: S + ["--max-failures", "-1"] + OUT, "--max-failures"),
    ("flag-cpus", lambda t: S + ["--cpus-per-trial", "0"] + OUT, "--cpus-per-trial"),
    ("flag-gpus", lambda t: S + ["--gpus-per-trial", "-1"] + OUT, "--gpus-per-trial"),
    ("flag-gpus-nan", lambda t: S + ["--gpus-per-trial", "nan"] + OUT, "--gpus-per-trial"),
    ("flag-algorithm", lambda t: S + ["--algorithm", "tpe"] + OUT, "--algorithm"),
    ("flag-ls-without-ls", lambda t: S + ["--no-local-search", "--ls-iterations", "3"]
     + OUT, "--ls-iterations"),
    ("flag-unknown", lambda t: S + ["--budgett", "3"] + OUT, "--budgett"),
    ("flag-paper-knob", lambda t: S + ["--iter-count", "3"] + OUT, "iter_count"),
    ("flag-objectives-unknown", lambda t: S + ["--objectives", "val_acc:max,size:min"]
     + OUT, "--objectives"),
    ("flag-objectives-order", lambda t: S + ["--objectives", "params:min,val_acc:max"]
     + OUT, "val_acc:max"),
    ("flag-objectives-mode", lambda t: S + ["--objectives", "val_acc:max,params:max"]
     + OUT, "params:min"),
    ("flag-objectives-twice", lambda t: S + ["--objectives", "val_acc,params,params"]
     + OUT, "twice"),
    ("flag-objectives-empty", lambda t: S + ["--objectives", ""] + OUT, "--objectives"),
    ("flag-latency-no-table", lambda t: S + ["--objectives", "val_acc:max,latency:min"]
     + OUT, "profile-latency"),
    ("flag-latency-table-missing", lambda t: S + [
        "--objectives", "val_acc:max,latency:min", "--latency-table", f"{t}/none.json"]
     + OUT, "none.json"),
    ("flag-latency-table-not-a-table", lambda t: S + [
        "--objectives", "val_acc:max,latency:min", "--latency-table",
        _file(t, "lt.json", "{}")] + OUT, "latency table"),
    ("flag-latency-table-unused", lambda t: S + ["--latency-table", "x.json"] + OUT,
     "latency"),
    ("flag-ls-from-one-objective", lambda t: S + ["--ls-from", "smallest"] + OUT,
     "--ls-from"),
    ("flag-ls-from-unknown", lambda t: S + ["--objectives", "val_acc,params",
                                            "--ls-from", "middle"] + OUT, "--ls-from"),
    ("file-objectives", lambda t: S + ["-e", _experiment(t, "o", search={
        "objectives": ["accuracy"]})] + OUT, "search.objectives"),
    ("no-command", lambda t: [], "command"),
    ("unknown-command", lambda t: ["serach"], "serach"),
    # -------------------------------------------------- where results go
    ("output-is-a-file", lambda t: S + ["-o", _file(t, "results")], "--output"),
    ("output-holds-files", lambda t: S + ["-o", _full_folder(t)], "--output"),
    ("output-unwritable", lambda t: S + ["-o", "/proc/steerage/out"], "--output"),
    ("output-under-a-file", lambda t: S + ["-o", _file(t, "f") + "/out"], "--output"),
    ("output-is-an-experiment", lambda t: S + ["-o", _finished(t)], "steerage resume"),
    ("storage-unwritable", lambda t: S + ["--storage", "/proc/steerage/tune"] + OUT,
     "--storage"),
    ("address-unreachable", lambda t: S + ["--address", "127.0.0.1:1"] + OUT, "address"),
    ("address-malformed", lambda t: S + ["--address", "nohost"] + OUT, "address"),
    # -------------------------------------------------- other commands
    ("resume-not-an-experiment", lambda t: ["resume", f"{t}"], "experiment.yaml"),
    ("resume-broken-experiment", lambda t: ["resume", _broken_experiment(t)],
     "experiment"),
    ("ls-iterations-0-on-finished", lambda t: ["local-search", _finished(t), "--iterations",
                                               "0"], "--iterations"),
    ("ls-schemes-unknown", lambda t: ["local-search", _finished(t), "--schemes", "Z"],
     "--schemes"),
    ("ls-unfinished", lambda t: ["local-search", _unfinished(t)], "global search"),
    ("ls-not-an-experiment", lambda t: ["local-search", f"{t}"], "experiment.yaml"),
    ("report-not-an-experiment", lambda t: ["report", f"{t}"], "experiment.yaml"),
    ("report-unfinished", lambda t: ["report", _unfinished(t)], "trials.csv"),
    ("export-which", lambda t: ["export", _finished(t), "--which", "7"], "--which"),
    ("export-format", lambda t: ["export", _finished(t), "--format", "pickle"], "--format"),
    ("export-no-local-search", lambda t: ["export", _finished(t, local_search=False)],
     "local"),
    ("export-front-without-front", lambda t: ["export", _finished(t), "--front", "0"],
     "pareto_front.csv"),
    ("export-front-and-which", lambda t: ["export", _finished(t), "--front", "0",
                                          "--which", "smallest"], "not both"),
    ("export-front-negative", lambda t: ["export", _finished(t), "--front", "-1"],
     "--front"),
    ("ls-from-one-objective", lambda t: ["local-search", _finished(t), "--ls-from", "knee"],
     "--ls-from"),
]


def _broken_experiment(tmp: Path) -> str:
    folder = tmp / "broken"
    folder.mkdir()
    (folder / "experiment.yaml").write_text("name: x\nfamily: [\n")
    return str(folder)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def no_ray(monkeypatch):
    """Starting Ray fails the test: these inputs must be refused before Ray starts."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started for an input that must fail before it")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)


def _run_cli(argv: list[str], capfd) -> tuple[int, list[str], str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    out, err = capfd.readouterr()
    return code, err.strip().splitlines(), out


@pytest.mark.parametrize("argv, field", [case[1:] for case in CLI_CASES],
                         ids=[case[0] for case in CLI_CASES])
def test_cli_refuses_with_one_line(argv, field, tmp_path, capfd, no_ray, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = [a.format(tmp=tmp_path) for a in argv(tmp_path)]
    before = _snapshot(tmp_path)
    code, lines, _ = _run_cli(arguments, capfd)
    assert code == 2, lines
    assert len(lines) == 1, lines  # one line: no traceback, no banner
    assert field in lines[0], lines[0]
    assert "Traceback" not in lines[0]
    assert _snapshot(tmp_path) == before, "a refused command changed or added files"


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 60
    assert len({case[0] for case in CLI_CASES}) == len(CLI_CASES)
    assert len({case[0] for case in API_CASES}) == len(API_CASES)


# ---------------------------------------------------------------- the Python API
def _global_search(**kwargs):
    from steerage_ray.global_search import global_search

    return lambda t: global_search(**{"dataset": "digits", "budget": 4, "epochs": 1,
                                      "storage_path": str(t / "tune"), **kwargs})


def _candidate(**changes):
    return {"family": "ffnn", "config": {"num_layers": 1, "neurons_1": 16}, **changes}


def _local_search(*args, **kwargs):
    from steerage_ray.local_search import run_local_search

    return lambda t: run_local_search(*args, **kwargs)


def _api_csv(tmp: Path, text: str) -> dict:
    (tmp / "inputs").mkdir()
    (tmp / "inputs" / "d.csv").write_text(text)
    return {"csv": str(tmp / "inputs" / "d.csv"), "label_column": "label"}


def _ray_tune_space():
    from ray import tune

    return {"num_layers": tune.randint(1, 3)}


API_CASES = [
    ("gs-family", _global_search(family="transformer"), "family"),
    ("gs-epochs-0", _global_search(epochs=0), "epochs"),
    ("gs-final-epochs-0", _global_search(final_epochs=0), "final_epochs"),
    ("gs-lr", _global_search(training={"lr": -1}), "training.lr"),
    ("gs-batch-size", _global_search(training={"batch_size": "big"}), "training.batch_size"),
    ("gs-optimizer", _global_search(training={"optimizer": "adamw9"}), "training.optimizer"),
    ("gs-training-key", _global_search(training={"optimiser": "adam"}), "optimiser"),
    ("gs-training-type", _global_search(training="fast"), "training"),
    ("gs-space-keys", lambda t: _global_search(space=_ray_tune_space())(t), "neurons_1"),
    ("gs-space-preset", _global_search(space="transformer"), "transformer"),
    ("gs-space-type", _global_search(space=3), "space"),
    ("gs-cpus", _global_search(cpus_per_trial=-1), "cpus_per_trial"),
    ("gs-no-resources", _global_search(cpus_per_trial=0, gpus_per_trial=0),
     "cpus_per_trial"),
    ("gs-concurrency", _global_search(max_concurrent_trials=0), "max_concurrent_trials"),
    ("gs-max-failures", _global_search(max_failures=-1), "max_failures"),
    ("gs-seed", _global_search(seed=-1), "seed"),
    ("gs-budget", _global_search(budget=0), "budget"),
    ("gs-dataset-name", _global_search(dataset="digitz"), "digitz"),
    ("gs-dataset-spec", _global_search(dataset={"csv": "a.csv"}), "label_column"),
    ("gs-dataset-type", _global_search(dataset=3), "dataset"),
    ("gs-one-class", lambda t: _global_search(dataset=_api_csv(
        t, "a,label\n" + "".join(f"{i},1\n" for i in range(20))))(t), "single class"),
    ("gs-lenet-tabular", _global_search(family="lenet"), "image dataset"),
    ("gs-checkpoint-seconds", _global_search(checkpoint_seconds=-1), "checkpoint_seconds"),
    ("gs-algorithm", _global_search(algorithm="tpe"), "algorithm"),
    ("gs-objectives", _global_search(objectives=["params:min"]), "objectives"),
    ("gs-latency-no-table", _global_search(objectives=["val_acc:max", "latency:min"]),
     "profile-latency"),
    ("gs-objectives-paper", _global_search(objectives="val_acc:max,params:min",
                                           algorithm="paper"), "algorithm"),
    ("gs-address", _global_search(address="127.0.0.1:1"), "address"),
    ("resume-nothing", lambda t: __import__(
        "steerage_ray.global_search", fromlist=["x"]).resume_global_search(
        str(t), "digits"), "Tune experiment"),
    ("ls-schemes", _local_search(_candidate(), "digits", schemes=["Z"]), "scheme"),
    ("ls-iterations", _local_search(_candidate(), "digits", iterations=0), "iterations"),
    ("ls-family", _local_search(_candidate(family="resnet"), "digits"), "family"),
    ("ls-no-config", _local_search({"family": "ffnn"}, "digits"), "config"),
    ("ls-dataset", _local_search(_candidate(), "digitz"), "digitz"),
    ("load-dataset-seed", lambda t: __import__(
        "steerage_ray.data", fromlist=["x"]).load_dataset("digits", seed=-1), "seed"),
    ("trainable-cpus", lambda t: __import__(
        "steerage_ray.trainables", fromlist=["x"]).make_trainable(
        "digits", cpus_per_trial=-1), "cpus_per_trial"),
    ("searcher-budget", lambda t: __import__(
        "steerage_ray.searchers", fromlist=["x"]).SteerageSearcher(
        "ffnn", "val_acc", "max", budget=0), "budget"),
]


@pytest.mark.parametrize("call, field", [case[1:] for case in API_CASES],
                         ids=[case[0] for case in API_CASES])
def test_api_refuses_with_one_value_error(call, field, tmp_path, no_ray):
    (tmp_path / "keep.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as caught:
        call(tmp_path)
    message = str(caught.value)
    assert field in message and "\n" not in message, message
    after = {name: data for name, data in _snapshot(tmp_path).items()
             if not name.startswith("inputs/")}  # what the case itself wrote first
    assert after == before


# ---------------------------------------------------------------- cases that need Ray
@pytest.mark.slow
@pytest.mark.parametrize("kwargs, field", [({"cpus_per_trial": 64}, "cpus_per_trial"),
                                           ({"gpus_per_trial": 4}, "gpus_per_trial")],
                         ids=["api-cpus-64", "api-gpus-4"])
def test_api_refuses_resources_no_node_has(kwargs, field, ray_session, tmp_path):
    """Tune would wait forever for such a trial; the cluster is asked first."""
    from steerage_ray.global_search import global_search

    with pytest.raises(ValueError, match=field):
        global_search("digits", budget=4, epochs=1, storage_path=str(tmp_path), **kwargs)
    assert not any(tmp_path.iterdir()), "nothing may be written"


@pytest.mark.slow
def test_cli_resource_errors_are_one_line_even_with_ray_banners(tmp_path):
    """A fresh process starts its own Ray (whose token-authentication banner is held
    back) and refuses resources no node has: one line, nothing written. (The CPU check
    is the same code: tests/test_run.py.)"""
    done = subprocess.run(
        [sys.executable, "-m", "steerage_ray", "search", "--gpus-per-trial", "64", "-o",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
        env={k: v for k, v in __import__("os").environ.items() if k != "RAY_ADDRESS"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "gpus_per_trial" in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_local_search_takes_a_dataset_name(ray_session):
    """``run_local_search(candidate, "digits")`` loads and prepares the data itself."""
    from steerage_ray.local_search import run_local_search

    result = run_local_search(_candidate(), "digits", schemes=["C"], iterations=1)
    assert not result.failures and len(result.pareto) >= 1


def test_the_old_name_of_run_local_search_says_where_it_went():
    import steerage_ray.local_search as local_search

    with pytest.raises(AttributeError, match="renamed run_local_search"):
        local_search.run({"family": "ffnn", "config": {}}, "digits")


def test_relative_dataset_paths_are_stored_resolved(tmp_path, monkeypatch):
    from steerage_ray.experiment import parse_experiment
    from steerage_ray.run.inputs import with_absolute_paths

    monkeypatch.chdir(tmp_path)
    experiment = parse_experiment({**DIGITS, "dataset": {"csv": "data/x.csv",
                                                         "label_column": "y"},
                                   "space": {"file": "space.yaml"}})
    resolved = with_absolute_paths(experiment)
    assert resolved.dataset["csv"] == str(tmp_path / "data" / "x.csv")
    assert resolved.space["file"] == str(tmp_path / "space.yaml")
    assert json.dumps(resolved.to_dict())  # still a plain document
