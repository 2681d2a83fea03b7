"""STEERAGE's tables at small scale: baseline, global search (GS) and GS + local search
(LS) on every offline dataset, in both search modes, over several seeds.

Settings (one experiment per setting x search mode x seed, run by the real pipeline,
``steerage_ray.run.run_experiment``: baseline, global search on Ray Tune, local search
as Ray tasks, report):

- FFNNs (the paper's Tables 3-5): digits (64 features), wine (13), breast cancer (30) and
  MNIST-1D generated with 12,500 samples (8,000 train / 2,000 validation / 2,500 test:
  one test example is 0.04 points), Table 2's space sized for the data (the default
  mode adds its no-reduction choice, ``preset_for_algorithm``), Adam lr 0.01,
  weight decay 1e-3 (Section 5.1.1), local search schemes A, B and C;
- CNNs (Table 7): digits as 1x8x8 images, Table 6's LeNet space for 8x8 inputs, local
  search by the NeST scheme (NeST on the convolutions, Scheme C operations on the
  classifier). Scheme C alone is not run here: its points keep the convolutions dense,
  and having the fewest parameters they would be the compact pick (parameters decide)
  while the target of this setting is FLOPs.

Baselines (Section 5.1.1: "the number of neurons in the hidden layers of the baseline
MLP architecture is a multiple of the number of its input features"; the paper's own
multiples vary from 0.7 to 20 per dataset): the run's baseline is the MLP [2d, d]
(d = input features; the demo's 64-128-64-10 on digits), and this script also trains
the MLP [4d, 2d] with the same settings, so compression is shown against both. Images:
the LeNet-5 layout (6 and 16 5x5 filters, FC 120-84) for 8x8 inputs.

Everything is chosen on validation accuracy only. The two GS+LS rows are the run's
summary rows: "most accurate" (the Pareto point with the best validation accuracy) and
"compact" (the smallest Pareto point within 0.5 validation points of it). Model size is
non-zero parameters x bits / 8 bytes at the precision of the row, shown with the test
accuracy at that precision: baselines 32 bits; in paper mode GS and GS+LS at the
``quant_bits`` global search chose (a dimension of Table 2); in the default mode each
model at its own precision, the fewest bits that keep its validation accuracy
(``steerage_ray.precision``).

Each run lives in its own directory (``--runs-dir``, default
``steerage_results/paper_tables/<setting>/<algorithm>/seed<k>``): finished runs are
skipped and interrupted ones resumed, so the script can be stopped and restarted at any
time. ``--quick`` runs a small budget on digits and digits images, one seed, to check
the pipeline (minutes; never written to RESULTS.md). Writes the per-run rows to
benchmarks/data/paper_tables_runs.csv and the "Paper tables" section of
benchmarks/RESULTS.md.

    python benchmarks/bench_paper_tables.py [--quick] [--seeds 0 1 2]
        [--algorithms steerage paper] [--settings digits wine ...] [--report-only] [--merge]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import pandas as pd
import ray
import torch

from steerage_ray.experiment import parse_experiment
from steerage_ray.models import build_ffnn, count_flops, count_params
from steerage_ray.pareto import choose
from steerage_ray.precision import size_kb
from steerage_ray.run import ExperimentDir, resume_experiment, run_experiment
from steerage_ray.run.inputs import load_experiment_data, training_settings
from steerage_ray.training import train_model

from _results import RESULTS, cpu_model, markdown_table, ram_gib, today, write_section

SECTION = "## Paper tables (Tables 3, 4, 5, 7 at small scale)"
RUNS_CSV = Path(__file__).with_name("data") / "paper_tables_runs.csv"
DEFAULT_RUNS = Path(__file__).resolve().parents[1] / "steerage_results" / "paper_tables"

ADAM_SMALL = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.001}
SETTINGS = {
    "digits": dict(
        dataset={"name": "digits"}, family="ffnn", label="digits FFNN",
        training={"epochs": 10, "final_epochs": 30, "batch_size": 64, **ADAM_SMALL},
        budget=50, ls={"schemes": ["A", "B", "C"], "iterations": 24, "epochs": 10}),
    "wine": dict(
        dataset={"name": "wine"}, family="ffnn", label="wine FFNN",
        training={"epochs": 30, "final_epochs": 60, "batch_size": 32, **ADAM_SMALL},
        budget=50, ls={"schemes": ["A", "B", "C"], "iterations": 24, "epochs": 20}),
    "breast_cancer": dict(
        dataset={"name": "breast_cancer"}, family="ffnn", label="breast cancer FFNN",
        training={"epochs": 20, "final_epochs": 60, "batch_size": 32, **ADAM_SMALL},
        budget=50, ls={"schemes": ["A", "B", "C"], "iterations": 24, "epochs": 15}),
    "mnist1d": dict(
        dataset={"name": "mnist1d", "generator_args": {"num_samples": 12500}},
        family="ffnn", label="MNIST-1D FFNN",
        training={"epochs": 15, "final_epochs": 40, "batch_size": 100, **ADAM_SMALL},
        budget=40, ls={"schemes": ["A", "B", "C"], "iterations": 24, "epochs": 5}),
    "digits_images": dict(
        dataset={"name": "digits_images"}, family="lenet", label="digits 8x8 LeNet",
        training={"epochs": 15, "final_epochs": 40, "batch_size": 64, "optimizer": "adam",
                  "lr": 0.005, "weight_decay": 0.0001},
        budget=40, ls={"schemes": ["nest"], "iterations": 30, "epochs": 10}),
}
FFNN_SETTINGS = [name for name, s in SETTINGS.items() if s["family"] == "ffnn"]
QUICK = dict(settings=["digits", "digits_images"], seeds=[0], budget=10, ls_iterations=8)
AT_BASELINE = "STEERAGE (GS+LS, at baseline accuracy)"
METHODS = ("Baseline", "STEERAGE (GS)", "STEERAGE (GS+LS, most accurate)",
           "STEERAGE (GS+LS, compact)", AT_BASELINE)
SHORT = {"Baseline": "Baseline", "STEERAGE (GS)": "GS",
         "STEERAGE (GS+LS, most accurate)": "GS+LS most accurate",
         "STEERAGE (GS+LS, compact)": "GS+LS compact",
         AT_BASELINE: "GS+LS at baseline accuracy"}
PHASES = ("baseline", "global_search", "local_search")


def experiment_for(setting: str, algorithm: str, seed: int, quick: bool):
    """The experiment of one run (validated like a YAML file)."""
    spec = SETTINGS[setting]
    space = ({"preset": "ffnn"} if spec["family"] == "ffnn"
             else {"preset": "lenet", "image_size": 8})
    baseline = ({"hidden_sizes_per_feature": [2, 1]} if spec["family"] == "ffnn"
                else {"model": "lenet5"})
    local = dict(spec["ls"])
    if quick:
        local["iterations"] = QUICK["ls_iterations"]
    return parse_experiment({
        "name": f"paper-tables-{setting}-{algorithm}-seed{seed}",
        "dataset": spec["dataset"], "family": spec["family"], "space": space,
        "search": {"algorithm": algorithm, "budget": QUICK["budget"] if quick
                   else spec["budget"], "final_count": 1},
        "training": spec["training"], "resources": {"cpus_per_trial": 1},
        "local_search": local, "baseline": baseline, "seed": seed,
    }, source=f"bench_paper_tables:{setting}")


def run_one(setting: str, algorithm: str, seed: int, runs_dir: Path, quick: bool) -> Path:
    """Run (or resume, or skip when finished) one experiment; return its directory."""
    path = runs_dir / setting / algorithm / f"seed{seed}"
    run_dir = ExperimentDir(path)
    if run_dir.exists() and all(run_dir.done(phase) for phase in PHASES):
        print(f"  {path}: done, skipped", flush=True)
        return path
    started = time.perf_counter()
    if run_dir.exists():
        print(f"  {path}: resuming", flush=True)
        resume_experiment(path)
    else:
        print(f"  {path}: starting", flush=True)
        run_experiment(experiment_for(setting, algorithm, seed, quick), path)
    print(f"  {path}: finished in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def wide_baseline(run_dir: ExperimentDir) -> dict:
    """The MLP [4d, 2d] trained like the run's baseline (cached in the run directory)."""
    cached = run_dir.read_json("baseline_wide.json")
    if cached is not None:
        return cached
    experiment = run_dir.experiment()
    data = load_experiment_data(experiment)
    torch.manual_seed(experiment.seed)
    hidden = [4 * data.n_features, 2 * data.n_features]
    model = build_ffnn(data.n_features, hidden, data.n_classes)
    result = train_model(model, data, training_settings(
        experiment, data, experiment.training["final_epochs"]))
    values = {"model": f"MLP {data.n_features}-{hidden[0]}-{hidden[1]}-{data.n_classes}",
              "val_acc": result.best_val_acc, "test_acc": result.test_acc,
              "params": count_params(model), "flops": count_flops(model, data.input_shape),
              "seconds": round(result.seconds, 2)}
    run_dir.write_json("baseline_wide.json", values)
    return values


def run_rows(setting: str, algorithm: str, seed: int, path: Path) -> list[dict]:
    """One row per summary method of a finished run (plus the wide baseline)."""
    run_dir = ExperimentDir(path)
    summary = pd.read_csv(run_dir.file("summary.csv"))
    winner = run_dir.read_json("global_winner.json")["result"]
    baseline = run_dir.read_json("baseline.json")
    pareto = pd.read_csv(run_dir.file("local_search", "pareto.csv"))
    seconds = run_dir.read_json("progress.json")["seconds"]
    bits = int(winner.get("quant_bits") or 32)
    common = dict(setting=setting, algorithm=algorithm, seed=seed,
                  **{f"{phase}_s": seconds.get(phase) for phase in PHASES},
                  baseline_params=baseline["params"], baseline_flops=baseline["flops"],
                  baseline_test_acc=baseline["test_acc"], gs_params=winner["params"],
                  gs_test_acc=winner["test_acc"], pareto_points=len(pareto))
    rows = []
    for row in summary.itertuples():
        method = row.method
        if method == "Baseline":
            quant, row_bits = baseline["test_acc"], 32
        elif method == "STEERAGE (GS)":
            quant, row_bits = winner.get("quant_test_acc", winner["test_acc"]), bits
        else:
            scheme, step = row.point.split(":")
            point = pareto[(pareto["scheme"] == scheme) & (pareto["step"] == int(step))].iloc[0]
            quant, row_bits = point["quant_test_acc"], int(point.get("quant_bits", bits))
        rows.append(_method_row(common, method, row.point, row._asdict(), row_bits, quant))
    matching = pareto[pareto["val_acc"] >= baseline["val_acc"]]
    if len(matching):  # the paper's claim: as accurate as the baseline, how much smaller
        point = choose(matching, "smallest")
        rows.append(_method_row(common, AT_BASELINE, f"{point.scheme}:{point.step}", point,
                                int(point.get("quant_bits", bits)), point.quant_test_acc))
    if SETTINGS[setting]["family"] == "ffnn":
        wide = wide_baseline(run_dir)
        rows.append(_method_row(common, "Baseline [4d, 2d]", "-", wide, 32, wide["test_acc"]))
    return rows


def _method_row(common: dict, method: str, point: str, values, bits: int,
                quant_test_acc: float) -> dict:
    """A table row: the run's ``common`` columns and one model's accuracies and counts
    (``values``: a mapping with ``val_acc``, ``test_acc``, ``params``, ``flops``), its
    size in KB at ``bits`` per non-zero weight."""
    return dict(common, method=method, point=point, val_acc=values["val_acc"],
                test_acc=values["test_acc"], params=values["params"],
                flops=values["flops"], bits=bits, quant_test_acc=quant_test_acc,
                size_kb=size_kb(values["params"], bits))


# -- tables ---------------------------------------------------------------------------------

def _mean_sd(values: pd.Series, fmt: str) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return format(values.iloc[0], fmt)
    return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1), fmt)}"


def _count(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def _count_sd(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) <= 1:
        return _count(values.iloc[0]) if len(values) else "-"
    return f"{_count(values.mean())} ± {_count(values.std(ddof=1))}"


def method_order(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """Table rows: the baselines once, then each search mode's three STEERAGE rows."""
    rows = [("Baseline", "")]
    if (runs["method"] == "Baseline [4d, 2d]").any():
        rows.append(("Baseline [4d, 2d]", ""))
    for algorithm in [a for a in ("steerage", "paper") if a in set(runs["algorithm"])]:
        rows += [(method, algorithm) for method in METHODS[1:]]
    return rows


def _cells(runs: pd.DataFrame, method: str, algorithm: str, settings: list[str],
           cell) -> list[str]:
    out = []
    for setting in settings:
        chosen = runs[(runs["setting"] == setting) & (runs["method"] == method)]
        if algorithm:
            chosen = chosen[chosen["algorithm"] == algorithm]
        elif method.startswith("Baseline"):  # the same baseline in both modes' runs
            chosen = chosen.drop_duplicates("seed")
        out.append(cell(chosen) if len(chosen) else "-")
    return out


def _label(method: str, algorithm: str) -> str:
    if method == "Baseline":
        return "Baseline (MLP [2d, d] / LeNet-5 layout)"
    if method == "Baseline [4d, 2d]":
        return "Baseline MLP [4d, 2d]"
    return f"{SHORT[method]} ({algorithm})"


def table(runs: pd.DataFrame, settings: list[str], cell) -> str:
    header = ["method", *(SETTINGS[s]["label"] for s in settings)]
    rows = [[_label(m, a), *_cells(runs, m, a, settings, cell)]
            for m, a in method_order(runs)]
    return markdown_table(header, rows)


def compression(runs: pd.DataFrame, setting: str, method: str, algorithm: str,
                versus: str, column: str = "params") -> float:
    """Reference mean / method mean of ``column`` (ratio of means over seeds)."""
    mine = runs[(runs["setting"] == setting) & (runs["method"] == method)
                & (runs["algorithm"] == algorithm)][column].mean()
    if versus == "GS":
        other = runs[(runs["setting"] == setting) & (runs["method"] == "STEERAGE (GS)")
                     & (runs["algorithm"] == algorithm)][column].mean()
    else:
        other = runs[(runs["setting"] == setting) & (runs["method"] == versus)
                     ].drop_duplicates(["seed"])[column].mean()
    return other / mine if mine else float("nan")


def compression_table(runs: pd.DataFrame, settings: list[str], column: str) -> str:
    header = ["method", *(SETTINGS[s]["label"] for s in settings)]
    rows = []
    for method, algorithm in method_order(runs):
        if not algorithm:
            continue
        cells = []
        for setting in settings:
            parts = [f"{compression(runs, setting, method, algorithm, 'Baseline', column):.1f}x"]
            if (runs[runs["setting"] == setting]["method"] == "Baseline [4d, 2d]").any() \
                    and column == "params":
                parts.append(f"{compression(runs, setting, method, algorithm, 'Baseline [4d, 2d]', column):.1f}x")
            if method != "STEERAGE (GS)":
                parts.append(f"{compression(runs, setting, method, algorithm, 'GS', column):.1f}x vs GS")
            cells.append(" / ".join(parts))
        rows.append([_label(method, algorithm), *cells])
    return markdown_table(header, rows)


def _four_of_five(good: int, total: int) -> str:
    if total < len(SETTINGS):
        return f"n/a: {good} of {total} (only {total} of {len(SETTINGS)} settings run)"
    return f"{'met' if good >= 4 else 'MISSED'} ({good} of {total})"


def targets(runs: pd.DataFrame) -> list[list[str]]:
    """The issue's targets, per search mode, with the measured margin."""
    out = []
    settings = [s for s in SETTINGS if s in set(runs["setting"])]

    def mean(setting, method, algorithm, column="test_acc"):
        chosen = runs[(runs["setting"] == setting) & (runs["method"] == method)]
        if algorithm:
            chosen = chosen[chosen["algorithm"] == algorithm]
        else:
            chosen = chosen.drop_duplicates("seed")
        return chosen[column].mean()

    for algorithm in [a for a in ("steerage", "paper") if a in set(runs["algorithm"])]:
        wins = [(s, 100 * (mean(s, "STEERAGE (GS)", algorithm) - mean(s, "Baseline", "")))
                for s in settings]
        good = sum(d >= 0 for _, d in wins)
        out.append([algorithm, "GS test acc >= baseline on >= 4 of 5 settings",
                    "; ".join(f"{SETTINGS[s]['label']} {d:+.2f}" for s, d in wins),
                    _four_of_five(good, len(wins))])
        for setting in ("mnist1d", "digits"):
            if setting not in settings:
                continue
            for base in ("Baseline", "Baseline [4d, 2d]"):
                delta = 100 * (mean(setting, "STEERAGE (GS+LS, compact)", algorithm)
                               - mean(setting, base, ""))
                ratio = compression(runs, setting, "STEERAGE (GS+LS, compact)", algorithm, base)
                ok = delta >= -0.3 and ratio >= 10
                out.append([algorithm, f"{SETTINGS[setting]['label']}: compact within 0.3 "
                            f"points of {_label(base, '')} (or above) with >= 10x fewer "
                            f"params", f"{delta:+.2f} points, {ratio:.1f}x",
                            "met" if ok else "MISSED" + (
                                f" (accuracy by {-0.3 - delta:.2f} points)" if delta < -0.3
                                else "") + (f" (params: {ratio:.1f}x < 10x)" if ratio < 10
                                            else "")])
        if "digits_images" in settings:
            delta = 100 * (mean("digits_images", "STEERAGE (GS+LS, compact)", algorithm)
                           - mean("digits_images", "Baseline", ""))
            ratio = compression(runs, "digits_images", "STEERAGE (GS+LS, compact)", algorithm,
                                "Baseline", "flops")
            ok = delta >= -0.3 and ratio >= 5
            out.append([algorithm, "digits images: compact within 0.3 points of LeNet-5 "
                        "(or above) with >= 5x fewer FLOPs",
                        f"{delta:+.2f} points, {ratio:.1f}x FLOPs",
                        "met" if ok else "MISSED" + (
                            f" (accuracy by {-0.3 - delta:.2f} points)" if delta < -0.3
                            else "") + (f" (FLOPs: {ratio:.1f}x < 5x)" if ratio < 5 else "")])
        for setting in [s for s in ("mnist1d", "digits", "digits_images") if s in settings]:
            column = "flops" if setting == "digits_images" else "params"
            found = runs[(runs["setting"] == setting) & (runs["method"] == AT_BASELINE)
                         & (runs["algorithm"] == algorithm)]
            seeds = runs[(runs["setting"] == setting) & (runs["algorithm"] == algorithm)
                         ]["seed"].nunique()
            if found.empty:
                measured = "no Pareto point reached the baseline's validation accuracy"
            else:  # against the baseline of the same seeds
                baseline = runs[(runs["setting"] == setting) & (runs["method"] == "Baseline")
                                ].drop_duplicates("seed").set_index("seed")["test_acc"]
                delta = 100 * (found.set_index("seed")["test_acc"]
                               - baseline.loc[found["seed"]]).mean()
                ratio = compression(runs, setting, AT_BASELINE, algorithm, "Baseline", column)
                measured = (f"{delta:+.2f} test points, {ratio:.1f}x fewer {column} "
                            f"({len(found)} of {seeds} seeds)")
            base = "LeNet-5" if setting == "digits_images" else "the MLP [2d, d]"
            out.append([algorithm, f"for reference (not a target): {SETTINGS[setting]['label']}"
                        f", GS+LS at baseline accuracy vs {base}",
                        measured, "-"])
        better = [(s, 100 * (mean(s, "STEERAGE (GS+LS, most accurate)", algorithm)
                             - mean(s, "STEERAGE (GS)", algorithm))) for s in settings]
        good = sum(d >= 0 for _, d in better)
        out.append([algorithm, "GS+LS most accurate test acc >= GS on >= 4 of 5 settings",
                    "; ".join(f"{SETTINGS[s]['label']} {d:+.2f}" for s, d in better),
                    _four_of_five(good, len(better))])
    return out


def report(runs: pd.DataFrame, args: argparse.Namespace, wall: float | None) -> str:
    settings = [s for s in SETTINGS if s in set(runs["setting"])]
    seeds = sorted(set(runs["seed"]))
    acc = lambda rows: _mean_sd(100 * rows["test_acc"], ".2f")  # noqa: E731
    parts = [
        SECTION, "",
        f"`python benchmarks/bench_paper_tables.py --seeds {' '.join(map(str, seeds))}` on "
        f"{today()}. Machine: {torch.get_num_threads()} torch threads / {cpu_model()}, "
        f"{ram_gib() or 0:.0f} GiB RAM, no GPU, shared with other jobs; Python "
        f"{platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}."
        + (f" Wall time of the script's last invocation: {wall / 3600:.1f} h." if wall
           else ""),
        "",
        "Every number is mean ± sd over seeds "
        f"{', '.join(map(str, seeds))} (the seed sets the data split, the searches and the "
        "trainings). Each run is the whole pipeline (`run_experiment`): the baseline, "
        "global search on Ray Tune (2 trials at a time, 1 CPU each), local search (one "
        "Ray task per scheme) and the report. Budgets: "
        + "; ".join(f"{SETTINGS[s]['label']} {SETTINGS[s]['budget']} trained "
                    f"architectures, {SETTINGS[s]['training']['epochs']} epochs each, "
                    f"final {SETTINGS[s]['training']['final_epochs']}, LS schemes "
                    f"{'/'.join(SETTINGS[s]['ls']['schemes'])} x <= "
                    f"{SETTINGS[s]['ls']['iterations']} steps of "
                    f"{SETTINGS[s]['ls']['epochs']} epochs" for s in settings) + ". "
        "Search modes: `steerage` (the default, asynchronous guided search; FFNNs on "
        "Table 2 plus its no-reduction choice) and `paper` (Algorithms 1-2 in rounds, "
        "Table 2). GS = the architecture with the best validation "
        "accuracy among those global search trained (the smallest of those that tie on "
        "it), trained again with the final epochs when it came from an earlier round "
        "(the better of it and the final round's pick by validation accuracy, the final "
        "pick on a tie); GS+LS most accurate / compact = the summary's two local-search "
        "picks (validation only; compact = smallest Pareto point within 0.5 validation "
        "points of the most accurate); GS+LS at baseline "
        "accuracy = the smallest local-search Pareto point whose validation accuracy is at "
        "least the baseline's (a seed where none is has no such row). Baselines: the MLP "
        "[2d, d] of the run (d = input features) and, for reference, the MLP [4d, 2d] "
        "trained with the same settings; LeNet-5 layout for 8x8 images. Test splits: "
        "digits 360 (0.28 points per example), wine 36 (2.8), breast cancer 114 (0.88), "
        "MNIST-1D 2,500 (0.04), digits images 360 (0.28).",
        "", "### Test accuracy (%) (Table 3 / Table 7 analogue)", "",
        table(runs, settings, acc),
        "", "### Non-zero parameters (Table 4 analogue)", "",
        table(runs, settings, lambda rows: _count_sd(rows["params"])),
        "", "Compression (ratio of mean parameters over seeds): vs the [2d, d] baseline "
            "(LeNet-5 layout for images) / vs the [4d, 2d] baseline / vs GS of the same "
            "mode:", "",
        compression_table(runs, settings, "params"),
        "", "### FLOPs per example (effective: 2 per active weight and output position)", "",
        table(runs, settings, lambda rows: _count_sd(rows["flops"])),
        "", "FLOPs reduction (ratio of means): vs baseline / vs GS:", "",
        compression_table(runs, settings, "flops"),
        "", "### Model size (KB = 1000 bytes) at the row's precision, and test accuracy "
            "(%) at that precision", "",
        "Non-zero parameters x bits / 8 (no sparse-index overhead), then each seed's bits. "
        "Baselines are 32-bit; in paper mode GS and GS+LS use the `quant_bits` global "
        "search chose (a dimension of Table 2); in the default mode each model has its "
        "own precision, the fewest bits whose quantized validation accuracy is at least "
        "its float one (`steerage_ray.precision`). Fake-quantized weights, per-channel "
        "symmetric.", "",
        table(runs, settings, lambda rows: f"{_mean_sd(rows['size_kb'], '.2f')} KB, "
              f"{_mean_sd(100 * rows['quant_test_acc'], '.2f')}%, "
              f"{'/'.join(str(int(b)) for b in rows['bits'])} bits"),
        "", "### Wall time per phase (s, mean over seeds)", "",
        markdown_table(
            ["setting", "mode", "baseline", "global search", "local search", "total"],
            [[SETTINGS[s]["label"], a,
              *(f"{runs[(runs.setting == s) & (runs.algorithm == a)][f'{p}_s'].mean():.0f}"
                for p in PHASES),
              f"{runs[(runs.setting == s) & (runs.algorithm == a)][[f'{p}_s' for p in PHASES]].sum(axis=1).mean():.0f}"]
             for s in settings for a in ("steerage", "paper")
             if len(runs[(runs.setting == s) & (runs.algorithm == a)])]),
        "", "### Targets of issue 12", "",
        markdown_table(["mode", "target", "measured (means over seeds)", "verdict"],
                       targets(runs)),
        "",
        f"Per-run rows: `benchmarks/data/{RUNS_CSV.name}`.",
    ]
    return "\n".join(parts) + "\n"


def collect(runs_dir: Path, settings, algorithms, seeds) -> pd.DataFrame:
    rows = []
    for setting in settings:
        for algorithm in algorithms:
            for seed in seeds:
                path = runs_dir / setting / algorithm / f"seed{seed}"
                run_dir = ExperimentDir(path)
                if run_dir.exists() and all(run_dir.done(p) for p in PHASES):
                    rows += run_rows(setting, algorithm, seed, path)
    return pd.DataFrame(rows)


def merged(stored: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus the stored rows of every run (setting, mode, seed) not in ``runs``."""
    run_key = ["setting", "algorithm", "seed"]
    if runs.empty:
        return stored
    fresh = set(map(tuple, runs[run_key].itertuples(index=False)))
    keep = [tuple(key) not in fresh for key in stored[run_key].itertuples(index=False)]
    return pd.concat([stored[keep], runs], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small budgets, digits + digits images, seed 0; not written")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algorithms", nargs="+", default=["steerage", "paper"],
                        choices=["steerage", "paper"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--report-only", action="store_true",
                        help="only collect the finished runs and write the tables")
    parser.add_argument("--merge", action="store_true",
                        help=f"keep the rows of {RUNS_CSV.name} for runs not collected now "
                             "(e.g. add the paper mode to the default mode's runs)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.settings = [s for s in args.settings if s in QUICK["settings"]]
        args.seeds = QUICK["seeds"]
    runs_dir = args.runs_dir or (DEFAULT_RUNS.with_name("paper_tables_quick") if args.quick
                                 else DEFAULT_RUNS)
    started = time.perf_counter()
    if not args.report_only:
        for seed in args.seeds:  # all settings for one seed first: early results early
            for setting in args.settings:
                for algorithm in args.algorithms:
                    run_one(setting, algorithm, seed, runs_dir, args.quick)
    runs = collect(runs_dir, args.settings, args.algorithms, args.seeds)
    if args.merge and RUNS_CSV.exists():
        runs = merged(pd.read_csv(RUNS_CSV), runs)
    if runs.empty:
        print("no finished runs")
        return
    text = report(runs, args, None if args.report_only else time.perf_counter() - started)
    print(text)
    if not args.quick and not args.no_write:
        RUNS_CSV.parent.mkdir(exist_ok=True)
        runs.to_csv(RUNS_CSV, index=False)
        write_section(SECTION, text)
        print(f"wrote {RESULTS} and {RUNS_CSV}")


if __name__ == "__main__":
    main()
