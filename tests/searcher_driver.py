"""Drive a Tune Searcher directly, as Tune would (no Tuner), on cheap synthetic objectives.

Shared by the searcher tests of both algorithms: ``drive`` keeps up to ``max_in_flight``
trials and completes the oldest when the searcher says "later".
"""

from __future__ import annotations

from ray.tune.search import Searcher

from steerage_ray.space import Choice, Condition, Float, Integer, SearchSpace


def small_space() -> SearchSpace:
    return SearchSpace([
        Integer("num_layers", 1, 3),
        Integer("neurons_1", 16, 128, step=16),
        Integer("neurons_2", 16, 128, step=16, condition=Condition("num_layers", 2)),
        Integer("neurons_3", 16, 128, step=16, condition=Condition("num_layers", 3)),
        Float("dr_ratio", 1.0, 4.0, step=0.5),
        Choice("quant_bits", (8, 16, 32)),
    ], constants={"family": "ffnn"})


def accuracy(config: dict) -> float:
    """A smooth synthetic 'validation accuracy' with a unique optimum."""
    return (0.95 - 0.04 * abs(config["num_layers"] - 2) - abs(config["neurons_1"] - 96) / 2000
            - 0.01 * config["dr_ratio"] + 0.0001 * config["quant_bits"])


def drive(searcher, objective=accuracy, max_in_flight=4, stop_after=None, prefix="t",
          outcome=None, running=None, start=0):
    """Run the ask/tell loop like Tune: keep up to ``max_in_flight`` trials, complete the
    oldest when the searcher says "later". ``outcome(trial_id, result)`` may rewrite a
    result; returning None reports an error. ``running`` are trials already in flight;
    new trial ids count from ``start``. Returns (proposals, still running, waits), where
    ``waits`` counts the times the *searcher* said "later" with a slot free."""
    proposals, running, waits = [], list(running or []), 0
    while stop_after is None or len(proposals) < stop_after:
        trial_id = f"{prefix}{start + len(proposals)}"
        free = len(running) < max_in_flight
        config = searcher.suggest(trial_id) if free else None
        if config == Searcher.FINISHED:
            break
        if config is None:
            waits += free
            if not running:
                raise AssertionError("searcher waits although nothing is in flight")
            done_id, done_config = running.pop(0)
            result = {_reported(searcher): objective(done_config), "training_iteration": 3}
            if outcome is not None:
                result = outcome(done_id, result)
            searcher.on_trial_complete(done_id, result, error=result is None)
            continue
        proposals.append((trial_id, config))
        running.append((trial_id, config))
    return proposals, running, waits


def finish(searcher, running, objective=accuracy):
    for trial_id, config in running:
        searcher.on_trial_complete(trial_id, {_reported(searcher): objective(config)})


def _reported(searcher) -> str:
    """The metric a trial reports: the searcher's, or the first of several (the others
    of the tests' multi-objective searches are computed from the config)."""
    metric = searcher.metric
    return metric if isinstance(metric, str) else metric[0]
