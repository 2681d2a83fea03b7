"""Multi-objective search: accuracy and size together, Steerage vs NSGA-II vs MOTPE vs random.

Objectives: validation accuracy (``val_acc``, max) and parameters (``params``, min) of
FFNN architectures (``ffnn_space(n_features)``) trained for real on MNIST-1D with the
same trainable (``make_trainable``), the same epochs and trial seed, 1 CPU per trial and
``max_concurrent_trials=2``, for several seeds. Every searcher trains the largest
``--budgets`` value; the front after ``b`` trained architectures is that of the first
``b`` to finish (an anytime measure: one run per searcher and seed serves every budget).

- ``steerage``: ``global_search(objectives=["val_acc:max", "params:min"])``
  (SteerageSearcher's Pareto strategy; params computed exactly by ``ArchitectureCosts``);
- ``optuna_nsga2``: ``OptunaSearch(metric=["val_acc", "params"], mode=["max", "min"],
  sampler=optuna.samplers.NSGAIISampler(seed=seed))`` (made picklable for Tune,
  see ``NSGAIISampler`` below);
- ``optuna_motpe``: the same with ``optuna.samplers.TPESampler(seed=seed)`` (Optuna's
  multi-objective TPE);
- ``random``: Tune's ``BasicVariantGenerator(random_state=seed)``.

Peers get their library defaults and Tune's flat space (``to_tune(space)``); they read
``params`` from the trial's last report (``make_trainable`` reports the trained model's
non-zero parameters, the dense count for these unpruned models). Every searcher's
hypervolume is computed from the same exact counts (``ArchitectureCosts``).

Hypervolume, exactly in 2-D by a sweep, of the points (val_acc, log10 params): the area
they dominate up to the reference point (val_acc 0, log10 params = log10 of the largest
model the space can build + 0.1), in accuracy x decades. Prints per-run and aggregated
tables (mean ± sd, median per searcher and budget, Mann-Whitney U p of Steerage vs the
best peer by mean), stores the per-run rows in benchmarks/data/pareto_runs.csv, a front
plot of the first seed in benchmarks/data/pareto_fronts_seed<seed>.png, and writes the
"Multi-objective search (Pareto front)" section of benchmarks/RESULTS.md.

    python benchmarks/bench_pareto.py [--budgets 50 100] [--seeds 0 1 2 3 4]
        [--epochs 15] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import ray
from _results import RESULTS, markdown_table, today, write_section
from bench_search_comparison import (
    MAX_CONCURRENT_TRIALS,
    machine,
    run_trials,
    start_ray,
    training_constants,
    trial_frame,
    variant_generator,
)
from ray.tune.search.optuna import OptunaSearch
from scipy.stats import mannwhitneyu

from steerage_ray.complexity_estimate import ArchitectureCosts
from steerage_ray.data import Dataset, load_dataset
from steerage_ray.global_search import global_search
from steerage_ray.pareto import non_dominated
from steerage_ray.searchers.tune_space import to_tune
from steerage_ray.space import SearchSpace, ffnn_space
from steerage_ray.strategies.plan import resolve_plan

SECTION = "## Multi-objective search (Pareto front)"
DATA = Path(__file__).with_name("data")
RUNS_CSV = DATA / "pareto_runs.csv"
SEARCHERS = ("steerage", "optuna_nsga2", "optuna_motpe", "random")
OBJECTIVES = ["val_acc:max", "params:min"]
REFERENCE_MARGIN = 0.1  # decades above the largest model


# ------------------------------------------------------------------ hypervolume
def largest_params(space: SearchSpace, costs: ArchitectureCosts) -> float:
    """Parameters of the largest FFNN the space builds: every layer, every width at its
    top, the smallest reduction ratio (the widest input)."""
    config = dict(space.random(1, 0)[0])
    for dimension in space.dimensions:
        if dimension.name == "num_layers" or dimension.name.startswith("neurons_"):
            config[dimension.name] = dimension.high
        elif dimension.name == "dr_ratio":
            config[dimension.name] = dimension.low
    return costs(space.decode(space.encode(config)))["params"]


def hypervolume(val_acc: np.ndarray, log_params: np.ndarray,
                reference: tuple[float, float]) -> float:
    """Area dominated by the points (accuracy up, log10 params down) within the
    reference box, exactly: points sorted by size, each adds the strip up to the next
    size at the best accuracy reached so far."""
    ref_acc, ref_log = reference
    keep = (val_acc > ref_acc) & (log_params < ref_log) & np.isfinite(val_acc)
    x, y = log_params[keep], val_acc[keep]
    if not len(x):
        return 0.0
    order = np.argsort(x, kind="stable")
    x, best = x[order], np.maximum.accumulate(y[order])
    widths = np.diff(np.append(x, ref_log))
    return float(np.sum(widths * (best - ref_acc)))


# ------------------------------------------------------------------ runs
def with_params(trials: pd.DataFrame, space: SearchSpace,
                costs: ArchitectureCosts) -> pd.DataFrame:
    """Trials in order of finishing, with their exact parameter counts."""
    trials = trials.sort_values("end", kind="stable").reset_index(drop=True)
    trials["params"] = [costs({name: row[name] for name in space.names})["params"]
                        for _, row in trials.iterrows()]
    return trials


def run_steerage(dataset, space, budget, epochs, seed, storage_path) -> pd.DataFrame:
    result = global_search(dataset, "ffnn", space=space, budget=budget, epochs=epochs,
                           final_epochs=epochs, cpus_per_trial=1,
                           max_concurrent_trials=MAX_CONCURRENT_TRIALS,
                           storage_path=storage_path, name=f"steerage-{seed}", seed=seed,
                           verbose=0, objectives=OBJECTIVES)
    return trial_frame(result.result_grid, space)


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler, picklable: since Optuna 5.1 it holds a thread lock,
    which Tune cannot pickle when it saves the experiment. The lock is left out of the
    pickle and made anew on loading; the algorithm and its defaults are Optuna's."""

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_thread_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def peer_searcher(kind: str, space: SearchSpace, seed: int):
    """The peer's Tune searcher, its library defaults; the Optuna ones hold the space
    and the two objectives (Tune's single metric must not replace the list)."""
    if kind == "random":
        return variant_generator(random_state=seed)
    sampler = (NSGAIISampler(seed=seed) if kind == "optuna_nsga2"
               else optuna.samplers.TPESampler(seed=seed))
    return OptunaSearch(space=OptunaSearch.convert_search_space(to_tune(space)),
                        metric=["val_acc", "params"],
                        mode=["max", "min"], sampler=sampler)


def run_peer(kind, dataset, space, budget, epochs, seed, storage_path) -> pd.DataFrame:
    searcher = peer_searcher(kind, space, seed)
    param_space = training_constants(seed, epochs)
    if kind == "random":
        param_space = {**to_tune(space), **param_space}
    grid = run_trials(dataset, param_space, searcher, budget, storage_path,
                      f"{kind}-{seed}")
    return trial_frame(grid, space)


def one_run(searcher: str, dataset: Dataset, budgets: list[int], epochs: int, seed: int,
            reference: tuple[float, float]) -> tuple[list[dict], pd.DataFrame]:
    space = ffnn_space(n_features=dataset.n_features)
    costs = ArchitectureCosts("ffnn", dataset.input_shape, dataset.n_classes)
    budget = max(budgets)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pareto-") as storage_path:
        run = run_steerage if searcher == "steerage" else \
            lambda *a: run_peer(searcher, *a)
        trials = run(dataset, space, budget, epochs, seed, storage_path)
    wall = time.perf_counter() - began
    if len(trials) != budget:
        raise RuntimeError(f"{searcher} trained {len(trials)} architectures, not {budget}")
    trials = with_params(trials, space, costs)
    rows = []
    for b in sorted(budgets):
        first = trials.iloc[:b]
        acc, logp = first["val_acc"].to_numpy(float), np.log10(first["params"].to_numpy(float))
        front = first.iloc[non_dominated(np.column_stack([acc, -logp]))]
        rows.append({"searcher": searcher, "seed": seed, "budget": b, "epochs": epochs,
                     "hypervolume": hypervolume(acc, logp, reference),
                     "front_size": len(front), "best_val_acc": acc.max(),
                     "smallest_params": int(first["params"].min()),
                     "wall_seconds": wall})
    return rows, trials


# ------------------------------------------------------------------ tables and plot
def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample sd and median of the hypervolume per (budget, searcher), and the
    Mann-Whitney U p (two-sided) of Steerage against the peer with the best mean."""
    grouped = runs.groupby(["budget", "searcher"], sort=False)["hypervolume"]
    table = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(),
                          "median": grouped.median(), "seeds": grouped.size(),
                          "front_size": runs.groupby(["budget", "searcher"], sort=False)
                          ["front_size"].mean()}).reset_index()
    table["p_vs_best_peer"] = math.nan
    for budget, rows in table.groupby("budget"):
        peers = rows[rows["searcher"] != "steerage"]
        if peers.empty or "steerage" not in set(rows["searcher"]):
            continue
        best = peers.loc[peers["mean"].idxmax(), "searcher"]
        ours = runs[(runs["budget"] == budget) & (runs["searcher"] == "steerage")]
        theirs = runs[(runs["budget"] == budget) & (runs["searcher"] == best)]
        if len(ours) > 1 and len(theirs) > 1:
            p = mannwhitneyu(ours["hypervolume"], theirs["hypervolume"],
                             alternative="two-sided").pvalue
            table.loc[(table["budget"] == budget) & (table["searcher"] == "steerage"),
                      ["p_vs_best_peer", "best_peer"]] = [p, best]
    return table


def summary_table(table: pd.DataFrame) -> str:
    def fmt(value, digits=4):
        return "" if pd.isna(value) else f"{value:.{digits}f}"

    rows = [[str(row["budget"]), row["searcher"], str(row["seeds"]),
             fmt(row["mean"]) + ("" if pd.isna(row["sd"]) else f" ± {row['sd']:.4f}"),
             fmt(row["median"]), fmt(row["front_size"], 1),
             "" if pd.isna(row["p_vs_best_peer"]) else
             f"{row['p_vs_best_peer']:.3g} (vs {row['best_peer']})"]
            for _, row in table.iterrows()]
    return markdown_table(["trained", "searcher", "seeds", "hypervolume mean ± sd",
                           "median", "front size", "Mann-Whitney p"], rows)


def runs_table(runs: pd.DataFrame) -> str:
    rows = [[str(r["budget"]), r["searcher"], str(r["seed"]), f"{r['hypervolume']:.4f}",
             str(r["front_size"]), f"{100 * r['best_val_acc']:.2f}",
             f"{r['smallest_params']:,}", f"{r['wall_seconds']:.0f}"]
            for _, r in runs.iterrows()]
    return markdown_table(["trained", "searcher", "seed", "hypervolume", "front size",
                           "best val %", "smallest params", "wall s (whole run)"], rows)


def plot_fronts(trials: dict[str, pd.DataFrame], seed: int, path: Path) -> Path:
    """Every searcher's trained architectures and front (staircase), one seed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for (name, frame), color in zip(trials.items(), plt.cm.tab10.colors):
        acc, params = frame["val_acc"].to_numpy(float), frame["params"].to_numpy(float)
        ax.scatter(params, acc, s=8, alpha=0.35, color=color)
        front = frame.iloc[non_dominated(np.column_stack([acc, -params]))]
        front = front.sort_values("params")
        ax.step(front["params"], front["val_acc"], where="post", color=color,
                marker="o", markersize=4, label=f"{name} ({len(front)} on the front)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (exact, ArchitectureCosts)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"MNIST-1D FFNN: accuracy vs. parameters, seed {seed}")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def settings_text(dataset: Dataset, budgets, epochs, seeds, reference, largest) -> str:
    plan = resolve_plan("steerage", max(budgets))
    return (f"MNIST-1D ({len(dataset.y_train)}/{len(dataset.y_val)}/{len(dataset.y_test)} "
            f"train/val/test, {dataset.n_features} features), FFNN space (Table 2), "
            f"{epochs} epochs per trial, seeds {', '.join(map(str, seeds))}; every "
            f"searcher trains {max(budgets)} architectures per run and the front after "
            f"{' and '.join(map(str, sorted(budgets)))} is that of the first ones to "
            f"finish. Objectives: val_acc (max) and params (min, exact). Hypervolume of "
            f"(val_acc, log10 params) with reference point (val_acc 0, log10 params "
            f"{reference[1]:.3f}) = log10 of the largest model the space builds "
            f"({largest:,.0f} parameters) + {REFERENCE_MARGIN}; in accuracy x decades, "
            f"higher is better. Steerage: its default (Pareto) strategy, plan for "
            f"{max(budgets)}: {plan.describe()}. Optuna {optuna.__version__}: NSGAIISampler "
            f"(population 50) and TPESampler (10 startup trials), their defaults, via "
            f"Tune's OptunaSearch. All: 1 CPU per trial, max_concurrent_trials="
            f"{MAX_CONCURRENT_TRIALS}. p: two-sided Mann-Whitney U of Steerage's "
            f"hypervolumes against the peer with the best mean at that budget.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100],
                        help="trained architectures at which the front is measured")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per trial")
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS),
                        choices=SEARCHERS)
    parser.add_argument("--no-write", action="store_true",
                        help="do not touch RESULTS.md, the runs CSV or the plot")
    args = parser.parse_args()
    if min(args.budgets) < 1 or args.epochs < 1:
        parser.error("--budgets and --epochs must be positive")
    dataset = load_dataset("mnist1d")
    space = ffnn_space(n_features=dataset.n_features)
    costs = ArchitectureCosts("ffnn", dataset.input_shape, dataset.n_classes)
    largest = largest_params(space, costs)
    reference = (0.0, math.log10(largest) + REFERENCE_MARGIN)
    # The trainable reports params with its last result only; Tune's strict check
    # would refuse the Optuna peers' earlier results for lacking it (Steerage computes
    # params itself and asks Tune to check val_acc only).
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    start_ray()
    began = time.perf_counter()
    runs, shown = [], {}
    for seed in args.seeds:
        for searcher in args.searchers:
            rows, trials = one_run(searcher, dataset, args.budgets, args.epochs, seed,
                                   reference)
            runs += rows
            if seed == args.seeds[0]:
                shown[searcher] = trials
            print(f"seed {seed} {searcher:13s}: " + ", ".join(
                f"HV@{r['budget']} {r['hypervolume']:.4f} (front {r['front_size']})"
                for r in rows) + f", {rows[-1]['wall_seconds']:.0f} s", flush=True)
    ray.shutdown()
    total = time.perf_counter() - began
    runs = pd.DataFrame(runs)
    defaults = (sorted(args.budgets) == [50, 100] and args.seeds == [0, 1, 2, 3, 4]
                and args.epochs == 15 and tuple(args.searchers) == SEARCHERS)
    command = "python benchmarks/bench_pareto.py" + ("" if defaults else (
        f" --budgets {' '.join(map(str, args.budgets))} --seeds "
        f"{' '.join(map(str, args.seeds))} --epochs {args.epochs} --searchers "
        f"{' '.join(args.searchers)}"))
    plot = DATA / f"pareto_fronts_seed{args.seeds[0]}.png"
    section = "\n".join([
        SECTION, "",
        (f"`{command}` on {today()}, {total / 60:.1f} min wall in total. Machine: "
         f"{machine()}."), "",
        settings_text(dataset, args.budgets, args.epochs, args.seeds, reference, largest),
        "", summary_table(aggregate(runs)), "",
        (f"Fronts of seed {args.seeds[0]} after {max(args.budgets)} trained: "
         f"`benchmarks/data/{plot.name}`."), "",
        "Every run:", "", runs_table(runs), ""])
    print("\n" + section)
    if not args.no_write:
        DATA.mkdir(exist_ok=True)
        runs.to_csv(RUNS_CSV, index=False, float_format="%.6g")
        plot_fronts(shown, args.seeds[0], plot)
        write_section(SECTION, section)
        print(f"wrote {RUNS_CSV}, {plot} and the '{SECTION[3:]}' section of {RESULTS}")


if __name__ == "__main__":
    main()
