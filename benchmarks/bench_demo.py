"""The demo experiment end to end, timed: what `make demo` does, recorded in RESULTS.md.

Runs a bundled experiment (default ``digits-ffnn``) through the whole pipeline on an
embedded local Ray, or reads an experiment directory that already ran (``--from-dir``),
and writes the "Demo" section of benchmarks/RESULTS.md: the paper-style summary
(baseline vs GS vs GS+LS), the time of each phase, the predictor's held-out Kendall tau
per round and the local-search Pareto set.

    python benchmarks/bench_demo.py                      # runs digits-ffnn (~10 min, 2 CPUs)
    python benchmarks/bench_demo.py --from-dir steerage_results/demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _results import cpu_model, markdown_table, ram_gib, today, write_section  # noqa: E402

from steerage_ray.experiment import load_experiment  # noqa: E402
from steerage_ray.run import run_experiment  # noqa: E402
from steerage_ray.report import format_summary  # noqa: E402

HEADING = "## Demo: `make demo` (digits-ffnn end to end)"


def search_text(search: dict, trained: int) -> str:
    """The global search's settings as the experiment gave them (None: the default)."""
    if search.get("algorithm") == "paper":
        return (f"paper mode, pool {search['count']}, iter_count {search['iter_count']}, "
                f"{search['iterations']} predictor-guided rounds, {search['final_count']} "
                f"final, EES {search['ees_population']} x {search['ees_generations']}")
    return (f"default algorithm{', reproducible' if search.get('reproducible') else ''}, "
            f"budget {search.get('budget') or trained}, {search['final_count']} final")


def section(directory: Path, command: str, wall_seconds: float | None) -> str:
    experiment = load_experiment(directory / "experiment.yaml")
    progress = json.loads((directory / "progress.json").read_text())
    summary = pd.read_csv(directory / "summary.csv")
    rounds = pd.read_csv(directory / "predictor_rounds.csv")
    trials = pd.read_csv(directory / "trials.csv")
    pareto = pd.read_csv(directory / "local_search" / "pareto.csv")
    search = experiment.search
    lines = [
        HEADING, "",
        f"{today()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"{ram_gib() or 0:.0f} GiB RAM, no GPU. Command: `{command}`.",
        f"Experiment `{experiment.name}`: {search_text(search, len(trials))}; "
        f"{experiment.training['epochs']} epochs per searched "
        f"architecture, {experiment.training['final_epochs']} for the final pick and the "
        f"baseline; {len(trials)} architectures trained; local search schemes "
        f"{experiment.local_search['schemes']}, {experiment.local_search['iterations']} "
        f"iterations each.", "",
        "Summary (test accuracy on the 360-image test split; params = non-zero weights):",
        "", "```", format_summary(summary), "```", "",
        "Time per phase (wall clock, seconds):", "",
        markdown_table(["phase", "seconds"],
                       [[phase, f"{seconds:.1f}"]
                        for phase, seconds in progress["seconds"].items()]
                       + ([["whole command", f"{wall_seconds:.1f}"]]
                          if wall_seconds is not None else [])), "",
        "Predictor, per round (Kendall tau of the predictions made *before* the round "
        "was trained against its measured accuracy):", "",
        markdown_table(["round", "phase", "size", "kendall_tau", "refit s", "select s"],
                       [[str(r["round"]), r["phase"], str(r["size"]),
                         "-" if pd.isna(r["kendall_tau"]) else f"{r['kendall_tau']:.3f}",
                         "-" if pd.isna(r["fit_seconds"]) else f"{r['fit_seconds']:.3f}",
                         f"{r['select_seconds']:.3f}"] for _, r in rounds.iterrows()]), "",
        "Local-search Pareto set (validation accuracy vs non-zero parameters):", "",
        markdown_table(["scheme", "step", "operation", "val_acc", "test_acc", "params",
                        "flops"],
                       [[str(r["scheme"]), str(r["step"]), str(r["operation"]),
                         f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}", str(r["params"]),
                         str(r["flops"])] for _, r in pareto.iterrows()]), "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="digits-ffnn")
    parser.add_argument("--from-dir", type=Path,
                        help="record an experiment directory that already ran")
    args = parser.parse_args()
    if args.from_dir:
        text = section(args.from_dir, f"make demo  (recorded from {args.from_dir})", None)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="steerage-demo-"))
        os.environ["STEERAGE_CACHE_DIR"] = str(scratch / "cache")  # time a cold start
        output = scratch / args.experiment
        started = time.perf_counter()
        run_experiment(load_experiment(args.experiment), output)
        wall = time.perf_counter() - started
        text = section(output, f"python benchmarks/bench_demo.py --experiment "
                               f"{args.experiment}  (empty data cache)", wall)
    write_section(HEADING, text)
    print(text)


if __name__ == "__main__":
    main()
