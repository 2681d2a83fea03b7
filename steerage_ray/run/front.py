"""The global-search Pareto front of a run with several objectives, in its experiment
directory::

    pareto_front.csv    the non-dominated trained architectures: one row each, best
                        val_acc first, every objective (val_acc, params, ...), the
                        trial's reported values, config/<key> columns
    pareto_front.pt     {"configs": [config per row], "states": [weights per row or
                        None]}: the configs exactly (the CSV turns None into NaN) and
                        the trained weights, so that local search can start from any
                        member and `steerage export --front INDEX` can write one
                        without training anything again
    local_search/start.json   the member local search started from, and why

Decisions: the weights of every member are kept (a front has a handful to a few dozen
members; Tune keeps them anyway, this copy survives deleting ``tune/``). The start is
picked when local search starts (``local_search.start``, ``--ls-from``: ``knee`` by
default), so ``steerage local-search DIR --ls-from smallest`` can start elsewhere later.
"""

from __future__ import annotations

import pandas as pd
import torch

from steerage_ray import named_objectives
from steerage_ray.experiment import Experiment
from steerage_ray.pareto import front_member
from steerage_ray.run.directory import ExperimentDir, plain

CSV, STATES, START = "pareto_front.csv", "pareto_front.pt", "local_search/start.json"


def save_front(result, run_dir: ExperimentDir) -> pd.DataFrame:
    """Write the front of a ``GlobalSearchResult``: the table, configs and weights."""
    front = result.pareto_front.reset_index(drop=True)
    configs = [plain(result.searcher.trial(tid)["config"]) for tid in front["trial_id"]]
    states = [result.trained_weights(tid) for tid in front["trial_id"]]
    run_dir.write_with(STATES, lambda path: torch.save(
        {"configs": configs, "states": states}, path))
    run_dir.write_with(CSV, lambda path: front.to_csv(path, index=False))
    return front


def read_front(run_dir: ExperimentDir) -> pd.DataFrame | None:
    path = run_dir.file(CSV)
    return pd.read_csv(path) if path.is_file() else None


def front_model(run_dir: ExperimentDir, index: int) -> tuple[dict, dict | None]:
    """Config and trained weights (None if none were kept) of front row ``index``."""
    front = read_front(run_dir)
    if front is None or not run_dir.file(STATES).is_file():
        raise ValueError(f"{run_dir.path} has no pareto_front.csv: the global search "
                         f"had one objective (search with --objectives "
                         f"{named_objectives.EXAMPLE}) or has not finished")
    if not 0 <= index < len(front):
        raise ValueError(f"--front must be a row index of pareto_front.csv, "
                         f"0..{len(front) - 1}, got {index}")
    saved = torch.load(run_dir.file(STATES), weights_only=False)
    return saved["configs"][index], saved["states"][index]


def local_search_start(experiment: Experiment, run_dir: ExperimentDir) -> dict:
    """The front member local search starts from (``local_search.start``, default
    ``knee``): ``{"from", "index", "config", "state", "result"}``."""
    front = read_front(run_dir)
    which = experiment.local_search["start"]
    which = "knee" if which is None else which
    minimise = [name for name in named_objectives.names(experiment.search["objectives"])
                if name != named_objectives.TRAINED]
    if front is None:
        raise ValueError(f"{run_dir.path} has no pareto_front.csv; run `steerage resume "
                         f"{run_dir.path}` first")
    index = front_member(front, which, minimise)
    config, state = front_model(run_dir, index)
    row = front.iloc[index]
    return {"from": which, "index": index, "config": config, "state": state,
            "result": plain({key: row[key] for key in ("trial_id", "val_acc", *minimise,
                                                        "test_acc") if key in row})}


def record_start(run_dir: ExperimentDir, start: dict) -> None:
    """Write ``local_search/start.json``: which member, why, its objectives."""
    run_dir.write_json(START, {key: value for key, value in start.items()
                               if key != "state"})
