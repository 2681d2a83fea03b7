"""The run orchestration without Ray: the experiment directory, the phase loop, what each
phase is given, what it writes, and the report and export built from those files.
(The same code end to end on a real Ray: tests/test_cli.py.)"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.experiment import load_experiment, parse_experiment
from steerage_ray.global_search import best_trial, inert_dimensions
from steerage_ray.models import quantize_model
from steerage_ray.run import ExperimentDir, export_experiment_model, rebuild_report
from steerage_ray.run.baseline import baseline_model
from steerage_ray.run.commands import run_phases
from steerage_ray.run.directory import TUNE_NAME
from steerage_ray.run.inputs import (
    experiment_space,
    training_overrides,
    training_settings,
    with_dataset_path,
)
from steerage_ray.run.phases import (
    global_search_arguments,
    local_search_start,
    save_global_search,
)
from steerage_ray.run.progress import TrialProgress
from steerage_ray.run.session import fit_resources
from steerage_ray.space import Integer, SearchSpace, ffnn_space, lenet_space

MINIMAL = {"name": "unit", "dataset": "digits", "family": "ffnn",
           "baseline": {"hidden_sizes": [16]}}


@pytest.fixture
def run_dir(tmp_path):
    directory = ExperimentDir(tmp_path / "run")
    directory.create(parse_experiment(MINIMAL))
    return directory


def test_the_directory_refuses_to_start_twice_and_records_progress(run_dir):
    assert run_dir.exists() and run_dir.experiment().name == "unit"
    with pytest.raises(ValueError, match="steerage resume"):
        run_dir.require_new()
    assert not run_dir.done("baseline")
    run_dir.mark_done("baseline", 1.234)
    run_dir.mark_done("baseline", 2.0)
    assert run_dir.read_json("progress.json") == {"done": ["baseline"],
                                                  "seconds": {"baseline": 2.0}}
    run_dir.write_json("x.json", {"n": np.int64(3), "shape": (1, 2)})
    assert run_dir.read_json("x.json") == {"n": 3, "shape": [1, 2]}
    assert run_dir.storage() is None and run_dir.tune_storage().endswith("tune")
    with pytest.raises(ValueError, match="not an experiment directory"):
        ExperimentDir(run_dir.path / "absent").experiment()


def test_phases_run_in_order_once_and_are_skipped_when_done(run_dir, capsys):
    calls = []
    phases = [(name, lambda name=name: calls.append(name))
              for name in ("baseline", "global_search", "local_search")]
    run_dir.mark_done("baseline", 0.0)
    run_phases(phases, run_dir)
    assert calls == ["global_search", "local_search"]
    assert run_dir.read_json("progress.json")["done"] == ["baseline", "global_search",
                                                          "local_search"]
    run_phases(phases, run_dir)  # a resumed run that finds everything done
    assert calls == ["global_search", "local_search"]
    out = capsys.readouterr().out
    assert "phase 1/3: baseline already done" in out and "phase 2/3: global search" in out


def test_a_failing_phase_is_not_marked_done(run_dir):
    def fail():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        run_phases([("baseline", fail)], run_dir)
    assert not run_dir.done("baseline")


def test_dataset_paths_and_label_columns_go_to_the_dataset_source():
    csv = load_experiment("uci-ffnn")
    moved = with_dataset_path(csv, "~/letter.csv", "letter")
    assert moved.dataset == {"csv": "~/letter.csv", "label_column": "letter"}
    named = with_dataset_path(parse_experiment(MINIMAL), "/data/torchvision", None)
    assert named.dataset == {"name": "digits", "root": "/data/torchvision"}
    with pytest.raises(ValueError, match="CSV datasets only"):
        with_dataset_path(parse_experiment(MINIMAL), None, "label")


def test_training_settings_come_from_the_experiment_section(digits):
    experiment = parse_experiment({**MINIMAL, "seed": 3, "training": {
        "epochs": 4, "final_epochs": 9, "lr": 0.05, "schedule": "cosine", "patience": 2}})
    search = training_settings(experiment, digits)
    final = training_settings(experiment, digits, experiment.training["final_epochs"])
    assert (search.epochs, final.epochs) == (4, 9)
    assert search.schedule == "cosine" and search.lr == 0.05 and search.patience == 2
    assert search.seed == 3 and search.batch_size == 128  # the experiment's default
    assert search.optimizer == "adam"  # settings_for digits: not set by the experiment
    assert training_overrides(experiment) == {"batch_size": 128, "lr": 0.05,
                                              "schedule": "cosine", "patience": 2}


def test_the_space_is_sized_for_the_data(digits):
    space = experiment_space(parse_experiment(MINIMAL), digits)
    assert space["dr_ratio"].max_value <= 20 and "neurons_1" in space.names
    wrong = parse_experiment({**MINIMAL, "space": {"preset": "ffnn", "n_features": 10}})
    with pytest.raises(ValueError, match="space.n_features is 10"):
        experiment_space(wrong, digits)


def test_the_default_algorithm_may_skip_reduction_and_paper_mode_keeps_table_2(digits):
    """The default algorithm's spaces leave quant_bits to each trial (chosen after
    training); paper mode searches it, as Table 2 does."""
    default = experiment_space(parse_experiment(MINIMAL), digits)
    assert default == ffnn_space(64, optional_reduction=True).without(["quant_bits"])
    paper = parse_experiment({**MINIMAL, "search": {"algorithm": "paper"}})
    assert experiment_space(paper, digits) == ffnn_space(64)
    table_2 = parse_experiment({**MINIMAL, "space": {"preset": "ffnn",
                                                     "optional_reduction": False}})
    assert experiment_space(table_2, digits) == ffnn_space(64).without(["quant_bits"])


def test_dimensions_that_change_nothing_trained_are_left_out_of_the_search(digits,
                                                                           digits_images):
    """An image filter matters only where images are resized (digits images are 8x8);
    quant_bits, which changes nothing trained either, is never searched by the default
    algorithm (tests/test_precision.py)."""
    assert inert_dimensions(ffnn_space(64, optional_reduction=True), digits) == ()
    assert inert_dimensions(lenet_space(8), digits_images) == ("image_filter",)
    assert inert_dimensions(lenet_space(4), digits_images) == ()
    assert inert_dimensions(SearchSpace([Integer("image_filter", 1, 6)],
                                        constants={"image_size": 8}), digits_images) == \
        ("image_filter",)
    assert inert_dimensions(SearchSpace([Integer("a", 1, 6)]), digits) == ()


def test_global_search_gets_the_experiment_as_arguments(digits):
    experiment = parse_experiment({**MINIMAL, "search": {
        "algorithm": "paper", "count": 64, "iter_count": 3, "iterations": 1,
        "max_params": 20000},
        "training": {"epochs": 2, "final_epochs": 5}})
    arguments = global_search_arguments(experiment, digits, "/tmp/tune")
    assert arguments["dataset"] is digits and arguments["family"] == "ffnn"
    assert (arguments["epochs"], arguments["final_epochs"]) == (2, 5)
    assert arguments["storage_path"] == "/tmp/tune" and arguments["name"] == TUNE_NAME
    assert arguments["count"] == 64 and arguments["iter_count"] == 3
    assert "budget" not in arguments and "max_params" not in arguments
    constraint = arguments["constraint"]
    assert isinstance(constraint, ResourceConstraint) and constraint.max_params == 20000
    assert isinstance(arguments["callbacks"][0], TrialProgress)
    assert global_search_arguments(experiment, digits, "/t", verbose=1)["callbacks"] is None


def test_resources_are_fitted_to_the_cluster():
    experiment = parse_experiment(MINIMAL)
    assert fit_resources(experiment, cpus=2, gpus=0).resources["gpus_per_trial"] == 0
    assert fit_resources(experiment, cpus=8, gpus=4).resources["gpus_per_trial"] == 1
    with pytest.raises(ValueError, match="resources.gpus_per_trial=2"):
        fit_resources(experiment.with_overrides(resources={"gpus_per_trial": 2}), 8, 1)
    with pytest.raises(ValueError, match="resources.cpus_per_trial=4"):
        fit_resources(experiment.with_overrides(resources={"cpus_per_trial": 4}), 2, 0)


def test_baseline_models_are_named_for_the_summary(digits, digits_images):
    model, name = baseline_model(parse_experiment(MINIMAL), digits)
    assert name == "MLP 64-16-10" and isinstance(model, nn.Sequential)
    per_feature = parse_experiment({**MINIMAL, "baseline": {"hidden_sizes_per_feature": [0.5]}})
    assert baseline_model(per_feature, digits)[1] == "MLP 64-32-10"
    lenet = parse_experiment({**MINIMAL, "family": "lenet", "dataset": "digits_images"})
    assert baseline_model(lenet, digits_images)[1].startswith("LeNet-5 layout")
    with pytest.raises(ValueError, match="hidden_sizes"):
        baseline_model(parse_experiment({**MINIMAL, "baseline": {}}), digits)


def _global_search_result():
    trials = pd.DataFrame({
        "trial_id": ["a", "b", "c"], "phase": ["initial", "iterative", "final"],
        "round": [0, 1, 2], "status": ["completed"] * 3, "metric": [0.90, 0.96, 0.94],
        "predicted": [np.nan, 0.93, 0.95], "iterations": [2, 2, 2],
        "test_acc": [0.89, 0.95, 0.93], "params": [1000, 3000, 2000],
        "flops": [2000, 6000, 4000], "config/num_layers": [1, 2, 1]})
    best = {"val_acc": 0.96, "test_acc": 0.95, "params": 3000, "flops": 6000}
    final = {"val_acc": 0.94, "test_acc": 0.93, "params": 2000, "flops": 4000}
    return SimpleNamespace(
        trials=trials, round_scores=pd.DataFrame({"round": [1], "kendall_tau": [0.5]}),
        best_observed_config={"num_layers": np.int64(2)}, best_observed_result=best,
        best_config={"num_layers": 1}, best_result=final,
        best_observed_state_dict={"w": torch.ones(2)})


def test_global_search_files_and_the_report_are_written_from_the_result(run_dir):
    winner = save_global_search(_global_search_result(), run_dir)
    assert winner["phase"] == "iterative" and winner["config"] == {"num_layers": 2}
    assert winner["ees_winner"]["result"]["val_acc"] == 0.94
    trials = pd.read_csv(run_dir.file("trials.csv"))
    assert "val_acc" in trials and "metric" not in trials
    assert torch.load(run_dir.file("winner_state.pt"))["w"].sum() == 2
    run_dir.write_json("baseline.json", {"test_acc": 0.9, "params": 6000, "flops": 12000})
    run_dir.file("local_search").mkdir()
    pd.DataFrame({"scheme": ["C", "B"], "step": [2, 1], "operation": ["x", "y"],
                  "val_acc": [0.95, 0.97], "test_acc": [0.94, 0.96],
                  "params": [500, 1500], "flops": [1000, 3000]}).to_csv(
        run_dir.file("local_search", "pareto.csv"), index=False)
    text = rebuild_report(run_dir.path)
    summary = pd.read_csv(run_dir.file("summary.csv"))
    assert list(summary["method"]) == ["Baseline", "STEERAGE (GS)",
                                       "STEERAGE (GS+LS, most accurate)",
                                       "STEERAGE (GS+LS, compact)"]
    assert list(summary["point"].iloc[2:]) == ["B:1", "B:1"]  # C is 2 points below B
    assert list(summary["compression"]) == [1.0, 2.0, 4.0, 4.0]
    assert "STEERAGE (GS+LS, compact)" in text and "within 0.5 points" in text
    # a wider tolerance is stored in the experiment and picks the smaller C point
    text = rebuild_report(run_dir.path, select_tolerance=2.5)
    assert run_dir.experiment().local_search["select_tolerance"] == 2.5
    summary = pd.read_csv(run_dir.file("summary.csv"))
    assert list(summary["point"].iloc[2:]) == ["B:1", "C:2"]
    assert list(summary["compression"]) == [1.0, 2.0, 4.0, 12.0]
    assert "within 2.5 points" in text
    assert run_dir.file("summary.md").read_text().startswith("# unit")
    for plot in ("accuracy_vs_params", "best_so_far", "predicted_vs_measured"):
        assert run_dir.file("plots", f"{plot}.png").is_file()


def test_among_equally_accurate_trials_the_smallest_wins_then_the_earliest():
    trials = pd.DataFrame({"metric": [0.97, np.nan, 1.0, 1.0, 1.0, 0.99],
                           "params": [10, 5, 900, 300, 300, 100]})
    assert best_trial(trials, "metric") == 3
    assert best_trial(trials.drop(columns="params"), "metric") == 2


def test_the_winner_record_names_the_phase_of_the_smallest_tied_trial(run_dir):
    result = _global_search_result()
    result.trials["metric"] = [0.90, 0.96, 0.96]  # "final" (2,000) ties with 3,000
    assert save_global_search(result, run_dir)["phase"] == "final"


def _earlier_round_winner(final_val_acc: float):
    """A search whose best architecture came from a guided round trained for 1 epoch,
    with a final round of 3 epochs."""
    result = _global_search_result()
    result.trials["phase"] = ["initial", "guided", "final"]
    result.best_observed_config = {"family": "ffnn", "seed": 0, "epochs": 1,
                                   "num_layers": 1, "neurons_1": 50, "dr_method": None,
                                   "dr_ratio": None, "quant_bits": 8}
    result.best_config = {**result.best_observed_config, "epochs": 3, "neurons_1": 20}
    result.best_result = {**result.best_result, "val_acc": final_val_acc}
    result.best_state_dict = {"final": torch.zeros(1)}
    result.searcher = SimpleNamespace(final_config={"epochs": 3})
    return result


def test_a_winner_of_an_earlier_round_is_trained_again_with_the_final_settings(run_dir,
                                                                               digits):
    winner = save_global_search(_earlier_round_winner(0.5), run_dir, digits)
    assert winner["retrained"] and winner["phase"] == "guided"
    assert winner["config"]["epochs"] == 3 and winner["result"]["epoch"] == 3
    assert winner["searched"]["val_acc"] == 0.96  # the search's result is kept
    assert 0.5 < winner["result"]["val_acc"] <= 1 and winner["result"]["params"] == 3760
    retrained_val = winner["result"]["val_acc"]
    state = torch.load(run_dir.file("winner_state.pt"))
    assert [tuple(v.shape) for v in state.values()][:2] == [(50, 64), (50,)]
    # local search starts from the weights the search trained
    assert torch.load(run_dir.file("winner_searched_state.pt"))["w"].sum() == 2
    config, start_state, _ = local_search_start(run_dir.experiment(), run_dir)
    assert config["epochs"] == 3 and start_state["w"].sum() == 2
    # the final round's pick wins when it validates better than the retrained winner
    winner = save_global_search(_earlier_round_winner(0.999), run_dir, digits)
    assert winner["phase"] == "final" and winner["config"]["neurons_1"] == 20
    assert "retrained" not in winner and winner["searched"]["val_acc"] == 0.96
    assert "final" in torch.load(run_dir.file("winner_state.pt"))
    # local search starts from the final pick trained with the search's settings
    start = torch.load(run_dir.file("winner_searched_state.pt"))
    assert [tuple(v.shape) for v in start.values()][:2] == [(20, 64), (20,)]
    # and when it validates as well (the retraining is seeded: the same score again)
    tie = save_global_search(_earlier_round_winner(retrained_val), run_dir, digits)
    assert tie["phase"] == "final" and tie["searched"]["val_acc"] == 0.96


def test_a_report_needs_the_global_search(run_dir):
    with pytest.raises(ValueError, match="no trials.csv yet"):
        rebuild_report(run_dir.path)


@pytest.mark.parametrize("which, key", [("best", ("B", 1)), ("most_accurate", ("B", 1)),
                                        ("compact", ("B", 1)), ("smallest", ("C", 2)),
                                        ("0", ("C", 2))])
def test_export_writes_the_chosen_pareto_model(run_dir, which, key):
    folder = run_dir.file("local_search")
    folder.mkdir()
    pd.DataFrame({"scheme": ["C", "B"], "step": [2, 1], "val_acc": [0.95, 0.97],
                  "params": [500, 1500]}).to_csv(folder / "pareto.csv", index=False)
    torch.manual_seed(0)
    models = {("C", 2): nn.Linear(4, 3), ("B", 1): nn.Sequential(nn.Linear(4, 5),
                                                                   nn.ReLU(), nn.Linear(5, 3))}
    torch.save({"models": models, "input_shape": (4,), "quant_bits": 32},
               folder / "models.pt")
    path = export_experiment_model(run_dir.path, fmt="torchscript", which=which)
    assert path == run_dir.file("export", f"scheme_{key[0]}_step_{key[1]}.torchscript.pt")
    x = torch.randn(2, 4)
    torch.testing.assert_close(torch.jit.load(str(path))(x), models[key](x))
    with pytest.raises(ValueError, match="--which must be"):
        export_experiment_model(run_dir.path, which="7")
    if which == "compact":  # the compact pick follows the tolerance stored in the experiment
        rebuild_report_tolerance = run_dir.experiment().with_overrides(
            local_search={"select_tolerance": 2.0})
        run_dir.update_experiment(rebuild_report_tolerance)
        path = export_experiment_model(run_dir.path, fmt="torchscript", which="compact")
        assert path == run_dir.file("export", "scheme_C_step_2.torchscript.pt")
    with pytest.raises(ValueError, match="format must be one of"):
        export_experiment_model(run_dir.path, fmt="pickle")


def test_a_quantized_export_has_the_weights_at_the_points_own_precision(run_dir):
    folder = run_dir.file("local_search")
    folder.mkdir()
    pd.DataFrame({"scheme": ["C", "B"], "step": [2, 1], "val_acc": [0.95, 0.97],
                  "quant_bits": [8, 4], "params": [10, 15]}).to_csv(folder / "pareto.csv",
                                                                     index=False)
    torch.manual_seed(0)
    models = {("C", 2): nn.Linear(4, 3), ("B", 1): nn.Linear(4, 3)}
    torch.save({"models": models, "input_shape": (4,)}, folder / "models.pt")
    x = torch.randn(2, 4)
    for which, key, bits in (("best", ("B", 1), 4), ("smallest", ("C", 2), 8)):
        path = export_experiment_model(run_dir.path, which=which, quantized=True)
        assert path.name == f"scheme_{key[0]}_step_{key[1]}_q{bits}.torchscript.pt"
        torch.testing.assert_close(torch.jit.load(str(path))(x),
                                   quantize_model(models[key], bits)(x))
        assert not torch.allclose(torch.jit.load(str(path))(x), models[key](x))


def test_the_cli_stores_the_select_tolerance_and_exports_the_compact_model(run_dir, capsys):
    from steerage_ray.cli import build_parser, main

    for command in (["search"], ["local-search", "d"], ["report", "d"]):
        assert build_parser().parse_args([*command, "--select-tolerance", "1.5"]) \
            .select_tolerance == 1.5
    save_global_search(_global_search_result(), run_dir)
    folder = run_dir.file("local_search")
    folder.mkdir()
    pd.DataFrame({"scheme": ["C", "B"], "step": [2, 1], "operation": ["x", "y"],
                  "val_acc": [0.95, 0.97], "test_acc": [0.94, 0.96],
                  "params": [500, 1500], "flops": [1000, 3000]}).to_csv(
        folder / "pareto.csv", index=False)
    torch.manual_seed(0)
    torch.save({"models": {("C", 2): nn.Linear(4, 3), ("B", 1): nn.Linear(4, 3)},
                "input_shape": (4,), "quant_bits": 32}, folder / "models.pt")
    assert main(["report", str(run_dir.path), "--select-tolerance", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "STEERAGE (GS+LS, compact)" in out and "within 2.5 points" in out
    assert run_dir.experiment().local_search["select_tolerance"] == 2.5
    assert main(["export", str(run_dir.path), "--which", "compact"]) == 0
    assert "scheme_C_step_2" in capsys.readouterr().out
    # a directory written before each point had its own precision: the one it stored
    assert main(["export", str(run_dir.path), "--which", "compact", "--quantized"]) == 0
    assert "scheme_C_step_2_q32.torchscript.pt" in capsys.readouterr().out
    assert main(["report", str(run_dir.path), "--select-tolerance", "200"]) == 2
    assert "select_tolerance must be in [0, 100]" in capsys.readouterr().err
    assert run_dir.experiment().local_search["select_tolerance"] == 2.5  # unchanged


def test_a_folder_holding_only_latency_tables_is_a_new_experiment_folder(tmp_path):
    from steerage_ray.run.commands import with_latency_table

    folder = ExperimentDir(tmp_path / "fast")
    folder.path.mkdir()
    (folder.path / "latency-ffnn-cpu-b1.json").write_text("{}")
    folder.require_new()  # profile-latency wrote it for this experiment
    experiment = parse_experiment({**MINIMAL, "search": {
        "objectives": ["val_acc:max", "latency:min"]}})
    found = with_latency_table(experiment, folder)
    assert found.search["latency_table"] == str(folder.path / "latency-ffnn-cpu-b1.json")
    assert with_latency_table(parse_experiment(MINIMAL), folder).search[
        "latency_table"] is None  # no latency objective: the table is not used
    (folder.path / "latency-ffnn-cuda-b1.json").write_text("{}")
    with pytest.raises(ValueError, match="choose one with --latency-table"):
        with_latency_table(experiment, folder)
    (folder.path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already holds files"):
        folder.require_new()
