"""SteerageSearcher vs Ray Tune's random search vs Optuna TPE, at equal numbers of trainings.

Every searcher trains exactly ``--budget`` FFNN architectures (Table 2 space sized for
the dataset, ``ffnn_space(n_features)``) with the same trainable
(``make_trainable``), the same epochs, the same trial seed, 1 CPU per trial and
``max_concurrent_trials=2``, on digits and MNIST-1D, for several seeds:

- ``steerage``: ``global_search`` (SteerageSearcher, its default algorithm and
  settings; the final pick trains as many epochs as every other trial);
- ``steerage_reproducible``: the same with ``reproducible=True``: each proposal sees
  the results its position says and waits for any of those still running, so one
  seed gives one search (``make demo``'s setting), at the cost of results seen later
  and of slots that wait;
- ``random``: Tune's ``BasicVariantGenerator(random_state=seed)`` over ``to_tune(space)``;
- ``optuna_tpe``: ``OptunaSearch`` with ``optuna.samplers.TPESampler(seed=seed)``, its
  defaults otherwise (10 random startup trials).

No method is tuned: each runs with its library defaults. Per run we record the best
validation accuracy among the trained architectures and the test accuracy of that
best-by-validation architecture (ties go to the first trained), and for Steerage also
the final pick's (the search's winner) validation and test accuracy. Baselines see Tune's flat space
(conditional widths are sampled always and ignored by the model builder when inactive);
Steerage sees the conditional space natively. Accuracies are of the float model:
``quant_bits`` only affects ``quant_test_acc``, so it is a neutral dimension here.
Steerage leaves it out of its search (``global_search`` makes it the trainable's
choice after training, ``precision_choices``, so no network is trained twice); random
search and TPE search it as Tune gives it, so they may train a network again with
other bits, and 'distinct' counts networks (``quant_bits`` left out).

Wall time and worker idle time per run, from trial start and end timestamps taken on
the driver by a Tune callback (``TrialClock``): a trial holds its slot from Tune's
``on_trial_start`` (its actor created or reset, about to train) to the arrival of its last
result (before any searcher hears that it is complete), so

    idle = 1 - sum(end - start) / (max_concurrent_trials x (last end - first start))

is the share of slot-seconds in which no trial held a slot: the searcher's work between
trials, Tune's scheduling and actor resets, and any slot left empty by a searcher that
waits for a round to finish. Inside a trial, Tune's function API also stops the
training at every report until the driver asks for the next one (one report per
epoch here); that time is inside a trial's span but not in its ``time_total_s``, and
is reported separately as "waiting at reports" (share of slot-seconds). Until
2026-12-06 this benchmark counted it as idle (occupancy from ``time_total_s``).

``--scheduler asha`` runs every searcher under Tune's ``ASHAScheduler`` (its defaults:
grace period 1, reduction factor 4; ``max_t`` = the epochs per trial), which stops most
trials after 1 or 4 of their epochs. Such a trial completes with the last value it
reported, a validation accuracy after fewer epochs. The default algorithm labels it with
the best value it reported and weights it in the predictor's fit by the share of the
epochs it ran (``strategies.guided._fidelity_weights``, at least 0.1). The ablation
``steerage_unweighted`` weights every trial fully, as if all had trained to the end;
both run next to random search and TPE. Under ASHA a run's best is taken among the
trials that trained to their end (the ones with a test accuracy; a stopped trial's
accuracy is of a partly trained network), and the runs also count those trials and
the epochs trained.

Prints per-run and aggregated tables, stores the per-run rows in
benchmarks/data/search_comparison_runs.csv (``--scheduler asha``:
search_comparison_asha_runs.csv) and writes the "SteerageSearcher vs random search vs
Optuna TPE" section of benchmarks/RESULTS.md (``--scheduler asha``: "Searchers under
ASHA early stopping"; other sections are kept).

    python benchmarks/bench_search_comparison.py [--budget 60] [--seeds 0 1 2 3 4]
        [--datasets mnist1d] [--epochs 15] [--scheduler none|asha] [--no-write]
        [--report-only]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch
from scipy.stats import mannwhitneyu

from steerage_ray.data import Dataset, load_dataset
from steerage_ray.global_search import global_search
from steerage_ray.searchers.tune_space import to_tune
from steerage_ray.space import SearchSpace, ffnn_space
from steerage_ray.strategies import guided
from steerage_ray.strategies.plan import resolve_plan
from steerage_ray.trainables import METRIC, MODE, make_trainable

from _results import RESULTS, cpu_model, markdown_table, ram_gib, today, write_section

SCHEDULERS = ("none", "asha")
SECTIONS = {"none": "## SteerageSearcher vs random search vs Optuna TPE",
            "asha": "## Searchers under ASHA early stopping"}
RUNS_CSVS = {"none": Path(__file__).with_name("data") / "search_comparison_runs.csv",
             "asha": Path(__file__).with_name("data") / "search_comparison_asha_runs.csv"}
SEARCHERS = {"none": ("steerage", "steerage_reproducible", "random", "optuna_tpe"),
             "asha": ("steerage", "steerage_unweighted", "random", "optuna_tpe")}
DEFAULT_EPOCHS = {"digits": 8, "mnist1d": 15}
MAX_CONCURRENT_TRIALS = 2
TRIAL_SCORES = ("val_acc", "test_acc", "quant_test_acc")


def run_trials(dataset: Dataset, param_space: dict, search_alg, num_samples: int,
               storage_path: str, name: str, clock: TrialClock,
               scheduler=None) -> tune.ResultGrid:
    """One Tune experiment of ``train_architecture`` trials, set up as ``global_search``
    sets up its own: 1 CPU per trial, actors reused, the trainable's default
    checkpointing, one checkpoint kept per trial.

    Tune applies ``max_concurrent_trials`` to ``Searcher``s only: a
    ``BasicVariantGenerator`` must be built with ``max_concurrent`` (see
    :func:`variant_generator`).
    """
    tuner = tune.Tuner(
        make_trainable(dataset, cpus_per_trial=1),
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, metric=METRIC, mode=MODE,
                                    num_samples=num_samples, reuse_actors=True,
                                    scheduler=scheduler,
                                    max_concurrent_trials=MAX_CONCURRENT_TRIALS
                                    if isinstance(search_alg, Searcher) else None),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0,
                                  callbacks=[clock],
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    grid = tuner.fit()
    if grid.num_errors:
        raise RuntimeError(f"{grid.num_errors} trial(s) of {name} failed: "
                           f"{[str(error)[:200] for error in grid.errors]}")
    return grid


class TrialClock(tune.Callback):
    """Driver-side wall-clock times (unix) of each trial: ``started`` when Tune starts
    it (``on_trial_start``: its actor is created or reset and is given the trial) and
    ``last_result`` when its latest result reached the driver."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.last_result: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.started[trial.trial_id] = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.last_result[trial.trial_id] = time.time()


def trial_frame(grid: tune.ResultGrid, space: SearchSpace,
                clock: TrialClock) -> pd.DataFrame:
    """One row per trial, in creation order: the network's keys (None when inactive;
    ``space`` without ``quant_bits``, which Steerage leaves to the trainable),
    the reported scores (test scores NaN for a trial a scheduler stopped: only the
    last report has them), ``diverged``, ``epochs_run`` (Tune's
    ``training_iteration``: one report per epoch), ``to_the_end`` (it made its last
    report), the seconds the trainable ran (``time_total_s``) and the trial's start and
    end on the driver's clock (unix time)."""
    rows = []
    for result in grid:
        # Optuna drops the 0.1 grid of the log-scaled dr_ratio (it cannot sample a log
        # scale and a step together): the trainable used the value as given; the
        # table snaps it to the grid
        config = {name: None if result.config[name] is None
                  else space[name].snap(result.config[name]) for name in space.names}
        architecture = space.decode_codes(space.encode(config)[None, :])[0]
        metrics = result.metrics
        rows.append({**{name: architecture[name] for name in space.names},
                     **{score: metrics.get(score, math.nan) for score in TRIAL_SCORES},
                     "diverged": bool(metrics.get("diverged", False)),
                     "epochs_run": metrics["training_iteration"],
                     "to_the_end": "test_acc" in metrics,
                     "seconds": metrics["time_total_s"],
                     "start": clock.started[metrics["trial_id"]],
                     "end": clock.last_result[metrics["trial_id"]]})
    return pd.DataFrame(rows)


def start_ray() -> None:
    """A private 2-CPU Ray for this script; ``address="local"`` so that a cluster someone
    else started on the machine (``ray start``) is neither joined nor disturbed."""
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)


def variant_generator(**options) -> BasicVariantGenerator:
    """Tune's random search / list replay, limited to the benchmark's concurrency."""
    return BasicVariantGenerator(max_concurrent=MAX_CONCURRENT_TRIALS, **options)


def training_constants(seed: int, epochs: int) -> dict:
    """Keys every trial shares, whichever searcher proposes its architecture."""
    return {"family": "ffnn", "seed": seed, "epochs": epochs}


def make_scheduler(kind: str, epochs: int):
    """None, or Tune's ASHA with its defaults and ``max_t`` = the epochs per trial."""
    if kind == "none":
        return None
    return ASHAScheduler(time_attr="training_iteration", max_t=epochs)


@contextlib.contextmanager
def fidelity_ignored():
    """The ablation ``steerage_unweighted``: every trial counts fully in the default
    algorithm's fit, however few epochs it ran (the searcher and its refit thread live
    in this process)."""
    weights = guided._fidelity_weights
    guided._fidelity_weights = lambda fidelity: np.ones(len(fidelity))
    try:
        yield
    finally:
        guided._fidelity_weights = weights


def run_steerage(dataset, space, network, budget, epochs, seed, storage_path,
                 scheduler=None, reproducible=False) -> tuple:
    clock = TrialClock()
    result = global_search(dataset, "ffnn", space=space, budget=budget, epochs=epochs,
                           final_epochs=epochs, cpus_per_trial=1,
                           max_concurrent_trials=MAX_CONCURRENT_TRIALS,
                           storage_path=storage_path, name=f"steerage-{seed}", seed=seed,
                           verbose=0, callbacks=[clock], scheduler=scheduler,
                           reproducible=reproducible)
    if (result.trials["status"] != "completed").any():
        raise RuntimeError(f"Steerage trials failed:\n{result.trials['status'].value_counts()}")
    ended = "test_acc" in result.best_result  # a scheduler may stop the final pick too
    final = {"final_val_acc": result.best_result[METRIC] if ended else math.nan,
             "final_test_acc": result.best_result.get("test_acc", math.nan)}
    return trial_frame(result.result_grid, network, clock), final


def run_baseline(kind, dataset, space, network, budget, epochs, seed, storage_path,
                 scheduler=None) -> tuple:
    search_alg = (variant_generator(random_state=seed) if kind == "random" else
                  OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed)))
    clock = TrialClock()
    grid = run_trials(dataset, {**to_tune(space), **training_constants(seed, epochs)},
                      search_alg, budget, storage_path, f"{kind}-{seed}", clock,
                      scheduler)
    return trial_frame(grid, network, clock), {}


def one_run(searcher: str, dataset: Dataset, budget: int, epochs: int, seed: int,
            scheduler: str = "none") -> dict:
    space = ffnn_space(n_features=dataset.n_features)
    network = space.without(["quant_bits"])  # what a trial trains
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as storage_path:
        stopper = make_scheduler(scheduler, epochs)
        if searcher in ("steerage", "steerage_reproducible"):
            trials, final = run_steerage(dataset, space, network, budget, epochs, seed,
                                         storage_path, stopper,
                                         reproducible=searcher == "steerage_reproducible")
        elif searcher == "steerage_unweighted":
            with fidelity_ignored():
                trials, final = run_steerage(dataset, space, network, budget, epochs, seed,
                                             storage_path, stopper)
        else:
            trials, final = run_baseline(searcher, dataset, space, network, budget, epochs,
                                         seed, storage_path, stopper)
    wall = time.perf_counter() - began
    if len(trials) != budget:
        raise RuntimeError(f"{searcher} trained {len(trials)} architectures, not {budget}")
    slot_seconds = MAX_CONCURRENT_TRIALS * (trials["end"].max() - trials["start"].min())
    held = (trials["end"] - trials["start"]).sum()
    ended = trials[trials["to_the_end"]]
    best = (ended.loc[ended["val_acc"].idxmax()] if len(ended)  # idxmax: first among ties
            else pd.Series({"val_acc": math.nan, "test_acc": math.nan}))
    distinct = len(trials[list(network.names)].drop_duplicates())  # inactive -> NaN
    return {"dataset": dataset.name, "searcher": searcher, "seed": seed, "budget": budget,
            "epochs": epochs, "best_val_acc": best["val_acc"],
            "test_acc_of_best": best["test_acc"],
            "final_val_acc": final.get("final_val_acc", math.nan),
            "final_test_acc": final.get("final_test_acc", math.nan),
            "mean_val_acc": ended["val_acc"].mean(), "distinct": distinct,
            "to_the_end": len(ended), "epochs_trained": int(trials["epochs_run"].sum()),
            "diverged": int(trials["diverged"].sum()),
            "train_seconds": trials["seconds"].sum(), "wall_seconds": wall,
            "idle_fraction": 1 - held / slot_seconds,
            "idle_seconds_per_trial": (slot_seconds - held) / budget,
            "report_wait_fraction": (held - trials["seconds"].sum()) / slot_seconds}


# Under a scheduler: trials trained to their end, and epochs trained in all.
PARTIAL_COUNTS = ("to_the_end", "epochs_trained")


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (ddof=1) over seeds per (dataset, searcher)."""
    scores = ["best_val_acc", "test_acc_of_best", "final_val_acc", "final_test_acc",
              "mean_val_acc", "distinct", "wall_seconds", "idle_fraction",
              "idle_seconds_per_trial", "report_wait_fraction"]
    scores += [column for column in PARTIAL_COUNTS if column in runs]
    grouped = runs.groupby(["dataset", "searcher"], sort=False)[scores]
    table = grouped.mean().join(grouped.std().add_suffix("_std")).reset_index()
    table["seeds"] = grouped.size().to_numpy()
    return table


def mean_std(row: pd.Series, column: str, scale: float = 100.0, digits: int = 2) -> str:
    if math.isnan(row[column]):
        return ""
    spread = row[f"{column}_std"]
    spread = "" if math.isnan(spread) else f" ± {scale * spread:.{digits}f}"
    return f"{scale * row[column]:.{digits}f}{spread}"


def summary_table(table: pd.DataFrame, scheduler: str = "none") -> str:
    partial = scheduler != "none"
    rows = [[row["dataset"], row["searcher"], str(row["seeds"]),
             mean_std(row, "best_val_acc"), mean_std(row, "test_acc_of_best"),
             mean_std(row, "final_val_acc"), mean_std(row, "final_test_acc"),
             mean_std(row, "mean_val_acc"), mean_std(row, "distinct", 1.0, 1)]
            + ([mean_std(row, "to_the_end", 1.0, 1), mean_std(row, "epochs_trained", 1.0, 0)]
               if partial else [])
            + [mean_std(row, "wall_seconds", 1.0, 0), mean_std(row, "idle_fraction", 100.0, 1),
               mean_std(row, "idle_seconds_per_trial", 1.0, 2),
               mean_std(row, "report_wait_fraction", 100.0, 1)]
            for _, row in table.iterrows()]
    mean_label = ("mean val acc % of the trials trained to the end" if partial
                  else "mean val acc % of all trials")
    return markdown_table(["dataset", "searcher", "seeds", "best val acc %",
                           "test acc % of best-by-val", "final pick val %",
                           "final pick test %", mean_label, "distinct architectures"]
                          + (["trials trained to the end", "epochs trained"] if partial
                             else [])
                          + ["wall s per run", "idle %", "idle s per trial",
                             "waiting at reports %"], rows)


COMPARED = [("best_val_acc", "best val acc %", 100.0), ("test_acc_of_best",
            "test acc % of best-by-val", 100.0), ("wall_seconds", "wall s", 1.0),
            ("idle_fraction", "idle %", 100.0),
            ("idle_seconds_per_trial", "idle s per trial", 1.0),
            ("report_wait_fraction", "waiting at reports %", 100.0)]


def versus_table(runs: pd.DataFrame, peer: str = "optuna_tpe") -> str:
    """Steerage against ``peer`` per dataset: medians and a two-sided Mann-Whitney U
    test over the seeds."""
    rows = []
    for dataset, group in runs.groupby("dataset", sort=False):
        ours, theirs = (group[group["searcher"] == name] for name in ("steerage", peer))
        if ours.empty or theirs.empty:
            continue
        for column, label, scale in COMPARED:
            p = mannwhitneyu(ours[column], theirs[column], alternative="two-sided").pvalue
            rows.append([dataset, label, f"{scale * ours[column].median():.2f}",
                         f"{scale * theirs[column].median():.2f}", f"{p:.3f}"])
    return markdown_table(["dataset", "measure", "steerage median", f"{peer} median",
                           "Mann-Whitney p"], rows)


def versus_text(runs: pd.DataFrame, scheduler: str) -> str:
    """Steerage against TPE and its own variant (reproducible; under a scheduler the
    unweighted ablation)."""
    names = {"optuna_tpe": "Optuna TPE",
             "steerage_reproducible": "its reproducible mode steerage_reproducible",
             "steerage_unweighted": "its ablation steerage_unweighted"}
    peers = [name for name in names
             if name in SEARCHERS[scheduler] and (runs["searcher"] == name).any()]
    return "\n\n".join(
        f"Steerage against {names[peer]} (medians over the seeds, two-sided Mann-Whitney "
        f"U):"
        f"\n\n{versus_table(runs, peer)}" for peer in peers)


def runs_table(runs: pd.DataFrame, scheduler: str = "none") -> str:
    def percent(value):
        return "" if math.isnan(value) else f"{100 * value:.2f}"

    partial = scheduler != "none"
    rows = [[row["dataset"], row["searcher"], str(row["seed"]), percent(row["best_val_acc"]),
             percent(row["test_acc_of_best"]), percent(row["final_val_acc"]),
             percent(row["final_test_acc"]), str(row["distinct"]), str(row["diverged"])]
            + ([str(row["to_the_end"]), str(row["epochs_trained"])] if partial else [])
            + [f"{row['wall_seconds']:.0f}", f"{100 * row['idle_fraction']:.1f}",
               f"{row['idle_seconds_per_trial']:.2f}",
               f"{100 * row['report_wait_fraction']:.1f}"]
            for _, row in runs.iterrows()]
    return markdown_table(["dataset", "searcher", "seed", "best val %", "test % of best",
                           "final pick val %", "final pick test %", "distinct", "diverged"]
                          + (["to the end", "epochs"] if partial else [])
                          + ["wall s", "idle %", "idle s per trial",
                             "waiting at reports %"], rows)


def settings_text(datasets: list[Dataset], epochs: list[int], budget: int,
                  seeds: list[int], scheduler: str = "none") -> str:
    plan = resolve_plan("steerage", budget)
    sizes = ", ".join(
        f"{data.name}: {len(data.y_train)}/{len(data.y_val)}/{len(data.y_test)} "
        f"train/val/test, {data.n_features} features, {n} epochs per trial "
        f"(one test example = {100 / len(data.y_test):.2f} points)"
        for data, n in zip(datasets, epochs))
    return (f"Budget {budget} trained architectures per run for every searcher; seeds "
            f"{', '.join(map(str, seeds))} (the seed drives the searcher and every trial's "
            f"weight initialisation and batch order); {sizes}. Training: the trainable's "
            f"defaults for these datasets (Adam, lr 0.01, weight decay 1e-3, batch 128; "
            f"the reported val_acc is the best epoch's, and test_acc is measured on that "
            f"epoch's weights). Steerage (default algorithm) for budget {budget}: {plan.describe()} "
            f"(the library defaults; steerage_reproducible the same with "
            f"reproducible=True). "
            f"Optuna TPE: {optuna.__version__}, 10 random startup trials (its default). "
            f"All searchers: 1 CPU per trial, max_concurrent_trials="
            f"{MAX_CONCURRENT_TRIALS}, actors reused. Mean ± sample std over seeds; "
            f"'distinct' counts different networks (inactive widths and quant_bits "
            f"ignored)."
            + ("" if scheduler == "none" else SCHEDULER_TEXT))


SCHEDULER_TEXT = (
    " Every searcher ran under Tune's ASHAScheduler with its defaults (grace period 1, "
    "reduction factor 4, one bracket; time_attr training_iteration, max_t = the epochs "
    "per trial), so a trial is stopped after 1 or 4 epochs unless it is among the best "
    "quarter of those that reached that rung. The best architecture of a run is the one "
    "with the best validation accuracy among the trials trained to the end (a stopped "
    "trial has no test accuracy, and its validation accuracy is of a partly trained "
    "network). steerage_unweighted is the default algorithm with every trial weighted "
    "fully in its predictor's fit (an ablation of the fidelity weights; the label is the "
    "best value a trial reported in both).")


def machine() -> str:
    memory = "" if ram_gib() is None else f", {ram_gib():.0f} GiB RAM"
    return (f"{os.cpu_count()} cores ({cpu_model()}){memory}, no GPU, shared with other "
            f"jobs; Python {platform.python_version()}, torch {torch.__version__}, ray "
            f"{ray.__version__}, optuna {optuna.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60, help="architectures per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["mnist1d"])
    parser.add_argument("--epochs", type=int, nargs="+",
                        help="epochs per trial, one per dataset (default: digits 8, "
                             "mnist1d 15)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="none",
                        help="'asha': every searcher under Tune's ASHAScheduler, next to "
                             "the steerage_unweighted ablation (own section and CSV)")
    parser.add_argument("--no-write", action="store_true",
                        help="do not touch RESULTS.md or the runs CSV")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the RESULTS.md section from the runs CSV, no runs")
    args = parser.parse_args()
    runs_csv = RUNS_CSVS[args.scheduler]
    if args.report_only:
        runs = pd.read_csv(runs_csv)
        args.budget, args.seeds = int(runs["budget"].iloc[0]), sorted(runs["seed"].unique())
        args.datasets = list(runs["dataset"].unique())
        epochs = [int(runs.loc[runs["dataset"] == name, "epochs"].iloc[0])
                  for name in args.datasets]
        report(runs, args, [load_dataset(name) for name in args.datasets], epochs,
               runs["wall_seconds"].sum(), "the sum of the runs' walls")
        return
    epochs = args.epochs or [DEFAULT_EPOCHS.get(name, 10) for name in args.datasets]
    if len(epochs) != len(args.datasets):
        parser.error(f"--epochs needs one value per dataset ({len(args.datasets)}), "
                     f"got {len(epochs)}")
    datasets = [load_dataset(name) for name in args.datasets]
    start_ray()
    began = time.perf_counter()
    runs = []
    for dataset, n_epochs in zip(datasets, epochs):
        for seed in args.seeds:
            for searcher in SEARCHERS[args.scheduler]:
                runs.append(one_run(searcher, dataset, args.budget, n_epochs, seed,
                                    args.scheduler))
                row = runs[-1]
                print(f"{dataset.name} seed {seed} {searcher:10s}: best val "
                      f"{row['best_val_acc']:.4f} (test {row['test_acc_of_best']:.4f})"
                      + ("" if math.isnan(row["final_val_acc"]) else
                         f", final pick val {row['final_val_acc']:.4f} test "
                         f"{row['final_test_acc']:.4f}")
                      + f", {row['distinct']} distinct, {row['to_the_end']} trained to "
                        f"the end, {row['wall_seconds']:.0f} s, idle "
                        f"{100 * row['idle_fraction']:.1f} %, waiting at reports "
                        f"{100 * row['report_wait_fraction']:.1f} %",
                      flush=True)
    ray.shutdown()
    runs = pd.DataFrame(runs)
    if not args.no_write:
        runs_csv.parent.mkdir(exist_ok=True)
        runs.to_csv(runs_csv, index=False, float_format="%.6g")
    report(runs, args, datasets, epochs, time.perf_counter() - began, "in total")


def report(runs: pd.DataFrame, args: argparse.Namespace, datasets: list[Dataset],
           epochs: list[int], seconds: float, how: str) -> None:
    """Print the section and (unless --no-write) write it to RESULTS.md."""
    defaults = (args.budget == 60 and list(args.seeds) == [0, 1, 2, 3, 4]
                and args.datasets == ["mnist1d"] and epochs == [DEFAULT_EPOCHS["mnist1d"]])
    command = "python benchmarks/bench_search_comparison.py" + ("" if defaults else (
        f" --budget {args.budget} --seeds {' '.join(map(str, args.seeds))} --datasets "
        f"{' '.join(args.datasets)} --epochs {' '.join(map(str, epochs))}")) + (
        "" if args.scheduler == "none" else f" --scheduler {args.scheduler}")
    heading = SECTIONS[args.scheduler]
    section = "\n".join([
        heading, "",
        f"`{command}` on {today()}, {seconds / 60:.1f} min wall ({how}). Machine: "
        f"{machine()}.", "",
        settings_text(datasets, epochs, args.budget, args.seeds, args.scheduler), "",
        summary_table(aggregate(runs), args.scheduler), "",
        versus_text(runs, args.scheduler), "",
        "Every run:", "", runs_table(runs, args.scheduler), ""])
    print("\n" + section)
    if not args.no_write:
        write_section(heading, section)
        print(f"wrote {RUNS_CSVS[args.scheduler]} and the '{heading[3:]}' section of "
              f"{RESULTS}")


if __name__ == "__main__":
    main()
