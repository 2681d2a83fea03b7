"""The `steerage` command end to end on a real Ray with real training on digits:
every report file, exports, one-line errors, resume after a killed driver, and a
simulated two-node cluster with fake GPUs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch
from PIL import Image

from steerage_ray.cli import main

pytestmark = pytest.mark.slow  # real Ray and real training, end to end

TINY = ["--budget", "7", "--ees-population", "20", "--ees-generations", "10", "--epochs",
        "2", "--final-epochs", "2", "--ls-iterations", "1"]
TINY_TRIALS = 7
REPORT_FILES = ["experiment.yaml", "progress.json", "baseline.json", "trials.csv",
                "trials.parquet", "predictor_rounds.csv", "global_winner.json",
                "winner_state.pt", "summary.csv", "summary.md",
                "local_search/pareto.csv", "local_search/history.csv",
                "local_search/models.pt", "plots/accuracy_vs_params.png",
                "plots/best_so_far.png", "plots/predicted_vs_measured.png"]


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


@pytest.fixture(scope="module")
def finished_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits"
    assert main(["search", "-e", "digits-ffnn", *TINY, "-o", str(out)]) == 0
    return out


def test_search_writes_every_report_file(finished_run):
    for name in REPORT_FILES:
        assert (finished_run / name).is_file(), name
    for plot in (finished_run / "plots").glob("*.png"):
        with Image.open(plot) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 100
    trials = pd.read_csv(finished_run / "trials.csv")
    assert len(trials) == TINY_TRIALS
    phases = trials.groupby("phase").size().to_dict()
    # digits-ffnn searches reproducibly: at concurrency 2 a proposal sees the results
    # before its last 5, so none of 7 has the 3 the ensemble needs: design points, then
    # the final phase (the same on every run)
    assert phases == {"initial": 6, "final": 1}
    assert trials["val_acc"].between(0, 1).all()
    assert (trials["gpus_assigned"] == 0).all()  # no GPU on this Ray: CPU-only trials
    # quant_bits changes nothing trained: the search leaves it out, so no network twice
    network = [c for c in trials if c.startswith("config/") and c != "config/quant_bits"]
    assert not trials[network].astype(str).duplicated().any()
    summary = pd.read_csv(finished_run / "summary.csv")
    assert summary["method"].iloc[0] == "Baseline"
    assert summary["method"].iloc[1] == "STEERAGE (GS)"
    assert list(summary["method"].iloc[2:]) == ["STEERAGE (GS+LS, most accurate)",
                                                "STEERAGE (GS+LS, compact)"]
    winner = json.loads((finished_run / "global_winner.json").read_text())
    assert summary["test_acc"].iloc[1] == winner["result"]["test_acc"]
    progress = json.loads((finished_run / "progress.json").read_text())
    assert progress["done"] == ["baseline", "global_search", "local_search"]


def test_report_is_rebuilt_from_the_files(finished_run, capsys):
    (finished_run / "summary.md").unlink()
    assert main(["report", str(finished_run)]) == 0
    assert "STEERAGE (GS)" in capsys.readouterr().out
    assert (finished_run / "summary.md").is_file()


@pytest.mark.parametrize("fmt, which", [("torchscript", "best"), ("state_dict", "smallest"),
                                        ("onnx", "best"), ("torchscript", "global"),
                                        ("torchscript", "compact")])
def test_export_writes_a_loadable_model(finished_run, tmp_path, fmt, which):
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(finished_run), "--format", fmt, "--which", which,
                 "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 0
    if fmt == "torchscript":
        module = torch.jit.load(str(out))
        winner = json.loads((finished_run / "global_winner.json").read_text())
        width = winner["result"]["input_features"]
        assert module(torch.zeros(5, width)).shape == (5, 10)


def test_local_search_can_be_rerun_with_other_schemes(finished_run):
    assert main(["local-search", str(finished_run), "--schemes", "C",
                 "--iterations", "1"]) == 0
    pareto = pd.read_csv(finished_run / "local_search" / "pareto.csv")
    assert set(pareto["scheme"]) == {"C"}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("steerage: error: ")
    return err[0]


def test_bad_input_is_one_line_with_exit_code_2(ray_session, tmp_path, capsys):
    assert main(["search", "-e", "no-such-preset", "-o", str(tmp_path / "a")]) == 2
    assert "digits-ffnn" in _error_line(capsys)

    assert main(["search", "-e", "uci-ffnn", "--dataset-path", str(tmp_path / "none.csv"),
                 "-o", str(tmp_path / "b")]) == 2
    assert "none.csv" in _error_line(capsys)

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsearch: {count: [1, 2\n")
    assert main(["search", "-e", str(broken), "-o", str(tmp_path / "c")]) == 2
    assert "not valid YAML" in _error_line(capsys)

    unknown_space = tmp_path / "space.yaml"
    unknown_space.write_text("name: x\ndataset: digits\nfamily: ffnn\n"
                             "space: {preset: transformer}\n")
    assert main(["search", "-e", str(unknown_space), "-o", str(tmp_path / "d")]) == 2
    assert "transformer" in _error_line(capsys)

    assert main(["search", "-e", "digits-ffnn", "--gpus-per-trial", "2",
                 "-o", str(tmp_path / "e")]) == 2
    assert "gpus_per_trial" in _error_line(capsys)
    for name in "abcde":
        assert not (tmp_path / name).exists(), "a failed command wrote an experiment"


def test_an_existing_experiment_is_never_overwritten(finished_run, capsys):
    before = {p: p.read_bytes() for p in finished_run.glob("*.*") if p.is_file()}
    assert main(["search", "-e", "digits-ffnn", *TINY, "-o", str(finished_run)]) == 2
    assert "steerage resume" in _error_line(capsys)
    assert {p: p.read_bytes() for p in before} == before


def test_resume_after_the_driver_is_killed_trains_nothing_twice(ray_session, tmp_path,
                                                                 capsys):
    out = tmp_path / "killed"
    address = ray_session.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "steerage_ray", "search", "-e", "digits-ffnn",
               "--budget", "13", "--ees-population", "20", "--ees-generations", "10",
               "--epochs", "2",
               "--final-epochs", "2", "--no-local-search", "-o", str(out),
               "--address", address]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=_clean_env(), start_new_session=True)
    deadline = time.monotonic() + 240
    seen = []
    for line in driver.stdout:  # kill the driver once a few trials have finished
        seen.append(line)
        if "trial 5 done" in line or time.monotonic() > deadline:
            break
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert any("trial 5 done" in line for line in seen), "".join(seen[-30:])
    assert not (out / "trials.csv").exists(), "the search finished before the kill"

    capsys.readouterr()
    assert main(["resume", str(out)]) == 0
    # A kill while Tune saved its state can leave its files from different moments
    # (searchers/tune_state.py), and a restored Tune can drop a trial it counted
    # (searchers/steerage.py, ``_dropped_trial``): either way Tune counts one trial that
    # trains nothing, the searcher says so, and the plan gives up one proposal (before,
    # the resume waited 10 minutes, or ended short).
    printed = capsys.readouterr().out
    torn = ("the driver stopped while Tune saved" in printed
            or "Tune dropped it" in printed)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 13 or (torn and len(trials) == 12), printed[-4000:]
    assert (trials["status"] == "completed").all()
    architecture = [c for c in trials.columns if c.startswith("config/")]
    assert not trials.duplicated(architecture).any(), "an architecture was trained twice"
    # Finished trials keep their 2 epoch reports. A trial in flight at the kill (2 run at
    # once) resumes from its checkpoint: if its final checkpoint was already written it
    # only reports again (3); a trial started over would show 4.
    assert set(trials["iterations"]) <= {2, 3}
    assert (trials["iterations"] == 3).sum() <= 2


TWO_NODES = textwrap.dedent("""
    import json, sys, threading
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "num_gpus": 1,
                                      "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    from steerage_ray.run import progress
    say = progress.say

    def remove_the_second_node_after_trial_3(message):
        say(message)
        if message.startswith("trial 3 done"):
            threading.Thread(target=cluster.remove_node, args=(worker,)).start()
            print("REMOVED the second node", flush=True)

    progress.say = remove_the_second_node_after_trial_3
    from steerage_ray.cli import main
    code = main(["search", "-e", "digits-ffnn", "--address", cluster.address,
                 "--budget", "9", "--ees-population", "20", "--ees-generations", "10",
                 "--epochs", "2", "--final-epochs", "2", "--no-local-search",
                 "-o", sys.argv[1]])
    print("EXIT", code)
    cluster.shutdown()
""")


def test_search_on_a_simulated_two_node_cluster_with_fake_gpus_losing_a_node(tmp_path):
    """Two Ray nodes with one fake GPU each: by default each trial takes one GPU, trials
    land on both nodes, and they train on the CPU since torch sees no CUDA device. The
    second node is removed mid-search: the trial it ran is retried on the first, and the
    search ends with every architecture trained once."""
    out = tmp_path / "two-nodes"
    done = subprocess.run([sys.executable, "-c", TWO_NODES, str(out)], env=_clean_env(),
                          capture_output=True, text=True, timeout=600)
    assert "EXIT 0" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    assert "REMOVED the second node" in done.stdout
    # a trial was running on the second node when it went (so trials used both nodes),
    # and it was retried, not lost; node_id records where each trial *finished*, which
    # after the removal can be the first node for every trial
    assert "lost its worker" in done.stdout, done.stdout[-3000:]
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 + 4 + 1
    assert (trials["status"] == "completed").all()
    assert not trials.duplicated([c for c in trials if c.startswith("config/")]).any()
    assert (trials["gpus_assigned"] == 1).all()
    assert not trials["on_gpu"].any()


def test_a_parameter_budget_bounds_every_trained_architecture(ray_session, tmp_path):
    experiment = tmp_path / "budget.yaml"
    experiment.write_text(
        "name: budget\ndataset: digits\nfamily: ffnn\nspace: {preset: ffnn}\n"
        "search: {algorithm: paper, count: 64, iter_count: 3, iterations: 1,\n"
        "         ees_population: 20,\n"
        "         ees_generations: 10, max_params: 20000}\n"
        "training: {epochs: 1, final_epochs: 1}\n"
        "local_search: {enabled: false}\nbaseline: {hidden_sizes: [32]}\n")
    out = tmp_path / "run"
    assert main(["search", "-e", str(experiment), "-o", str(out)]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 + 3 + 1
    assert (trials["params"] <= 20000).all()
