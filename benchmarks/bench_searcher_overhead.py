"""Driver overhead: what ``suggest`` + ``on_trial_complete`` cost Tune's event loop.

Both run on Tune's driver, between trials. The target (global-search issue): with 400
observations, at most 50 ms median and 250 ms at the 99th percentile per trial, on one
core. The searcher is driven exactly as Tune drives it (4 trials in flight, the oldest
completes first) on the paper's FFNN space (Table 2, 12 dimensions) with a synthetic
objective; every trial's suggest and complete calls are timed, and the trials that
complete with 400-439 observations are the measured window. Optuna's TPE (through Tune's
``OptunaSearch``) is timed the same way for reference.

    python benchmarks/bench_searcher_overhead.py [--seeds 3] [--no-write]

It pins itself to one core (``os.sched_setaffinity``) and records the machine's load.
"""

from __future__ import annotations

import argparse
import collections
import os
import time

import numpy as np

from steerage_ray.searchers import SteerageSearcher
from steerage_ray.searchers.tune_space import to_tune
from steerage_ray.space import ffnn_space

from _results import cpu_model, markdown_table, today, write_section

WINDOW = (400, 440)
CONCURRENCY = 4


def objective(config: dict) -> float:
    widths = [config[f"neurons_{i}"] or 0 for i in range(1, 7)]
    return (0.9 - 0.02 * abs(config["num_layers"] - 3) - abs(widths[0] - 300) / 5000
            - 0.003 * config["dr_ratio"] + 0.002 * (config["dr_method"] == 5))


def make(name: str, seed: int):
    space = ffnn_space(n_features=64)
    if name == "optuna-tpe":
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(seed=seed)
        searcher.set_search_properties("acc", "max", to_tune(space))
        return searcher
    algorithm = name.split("-", 1)[1]
    return SteerageSearcher(space, "acc", "max", algorithm=algorithm, seed=seed,
                            budget=WINDOW[1])


def drive(searcher) -> list[float]:
    """Seconds spent in suggest + on_trial_complete, per completed trial."""
    searcher.set_max_concurrency(CONCURRENCY)
    running: collections.deque = collections.deque()
    costs, spent, number = [], {}, 0
    while len(costs) < WINDOW[1]:
        while len(running) < CONCURRENCY:
            trial_id = f"t{number}"
            started = time.perf_counter()
            config = searcher.suggest(trial_id)
            spent[trial_id] = time.perf_counter() - started
            if not isinstance(config, dict):
                break
            running.append((trial_id, config))
            number += 1
        trial_id, config = running.popleft()
        started = time.perf_counter()
        searcher.on_trial_complete(trial_id, {"acc": objective(config)})
        costs.append(spent.pop(trial_id) + time.perf_counter() - started)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--searchers", default="steerage-steerage,steerage-paper,optuna-tpe")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = os.getloadavg()[0]
    rows = []
    for name in args.searchers.split(","):
        window, whole = [], []
        for seed in range(args.seeds):
            costs = np.array(drive(make(name, seed))) * 1e3
            window.extend(costs[WINDOW[0]:WINDOW[1]])
            whole.extend(costs)
        rows.append({"searcher": name, "median_ms_400": np.median(window),
                     "p99_ms_400": np.percentile(window, 99), "max_ms_400": np.max(window),
                     "median_ms_all": np.median(whole), "p99_ms_all": np.percentile(whole, 99)})
        print(rows[-1], flush=True)
    header = ["searcher", "median ms (400-439 obs)", "p99 ms (400-439 obs)",
              "max ms (400-439 obs)", "median ms (all)", "p99 ms (all)"]
    cells = [[row["searcher"], *(f"{row[k]:.1f}" for k in list(row)[1:])] for row in rows]
    heading = "## Driver overhead per trial (suggest + on_trial_complete)"
    text = (f"{heading}\n\n`python benchmarks/bench_searcher_overhead.py`, {today()}, "
            f"{cpu_model()}, pinned to one core, load average {load:.1f} at the "
            f"start. {args.seeds} seeds x {WINDOW[1]} trials on the FFNN space (Table 2), "
            f"{CONCURRENCY} in flight; per trial: its suggest + on_trial_complete. "
            f"'400-439 obs': trials completing with that many observations (target: median <= 50 ms, p99 <= 250 ms).\n\n"
            + markdown_table(header, cells) + "\n")
    print(text)
    if not args.no_write:
        write_section(heading, text)


if __name__ == "__main__":
    main()
