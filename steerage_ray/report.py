"""Experiment reports: the paper-style summary table and the three plots.

Inputs are plain DataFrames so a report can be rebuilt from the files of an experiment
directory without Ray:

- ``trials``: one row per trained architecture, in completion order, with columns
  ``phase`` (initial / round-i / final), ``val_acc``, and when known ``test_acc``,
  ``params``, ``flops``, ``predicted`` (the predictor's score before training).
- ``pareto``: local-search results with ``scheme``, ``val_acc``, ``test_acc``,
  ``params``, ``flops``.
- ``baseline`` / ``winner``: dicts with ``test_acc``, ``params``, ``flops``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless workers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from steerage_ray.pareto import select_point  # noqa: E402

PLOT_FILES = {
    "accuracy_vs_params": "accuracy_vs_params.png",
    "best_so_far": "best_so_far.png",
    "predicted_vs_measured": "predicted_vs_measured.png",
}


def summary_table(baseline: dict | None, winner: dict | None,
                  pareto: pd.DataFrame | None) -> pd.DataFrame:
    """Baseline vs GS vs GS+LS rows as in the paper's Tables 3-5.

    The GS+LS row is the most accurate local-search point (by validation accuracy, then
    fewer parameters: ``pareto.select_point``); compression is relative to the
    baseline's parameter count.
    """
    rows = []
    if baseline:
        rows.append(_summary_row("Baseline", baseline))
    if winner:
        rows.append(_summary_row("STEERAGE (GS)", winner))
    if pareto is not None and len(pareto):
        best = select_point(pareto)
        rows.append(_summary_row(f"STEERAGE (GS+LS, scheme {best['scheme']})",
                                 best.to_dict()))
    table = pd.DataFrame(rows, columns=["method", "test_acc", "params", "flops"])
    if baseline and baseline.get("params"):
        table["compression"] = baseline["params"] / table["params"]
    return table


def _summary_row(method: str, result: dict) -> dict:
    return {"method": method, "test_acc": result.get("test_acc"),
            "params": result.get("params"), "flops": result.get("flops")}


def format_summary(table: pd.DataFrame) -> str:
    """The summary table as aligned text for the terminal and RESULTS.md."""
    shown = table.copy()
    shown["test_acc"] = shown["test_acc"].map(lambda v: f"{100 * v:.2f}%"
                                              if pd.notna(v) else "-")
    shown["params"] = shown["params"].map(_human)
    shown["flops"] = shown["flops"].map(_human)
    if "compression" in shown:
        shown["compression"] = shown["compression"].map(
            lambda v: f"{v:.1f}x" if pd.notna(v) else "-")
    return shown.to_string(index=False)


def _human(value) -> str:
    if value is None or pd.isna(value):
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{int(value)}"


def plot_accuracy_vs_params(trials: pd.DataFrame, pareto: pd.DataFrame | None,
                            path: Path) -> Path:
    """Fig. 4 style: test (else validation) accuracy against parameters, GS and GS+LS."""
    fig, ax = plt.subplots(figsize=(6, 4))
    acc = "test_acc" if "test_acc" in trials and trials["test_acc"].notna().any() \
        else "val_acc"
    if "params" in trials:
        ax.scatter(trials["params"], trials[acc], s=14, alpha=0.6,
                   label="global search (trained architectures)")
    if pareto is not None and len(pareto):
        for scheme, points in pareto.groupby("scheme"):
            points = points.sort_values("params")
            ax.plot(points["params"], points["test_acc"], marker="o",
                    label=f"GS+LS scheme {scheme}")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (non-zero weights)")
    ax.set_ylabel("test accuracy" if acc == "test_acc" else "validation accuracy")
    ax.set_title("Accuracy vs. parameters")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_best_so_far(trials: pd.DataFrame, path: Path) -> Path:
    """Best validation accuracy over the number of trained architectures, by phase."""
    fig, ax = plt.subplots(figsize=(6, 4))
    values = trials["val_acc"].to_numpy(dtype=float)
    best = np.fmax.accumulate(np.where(np.isfinite(values), values, -np.inf))
    ax.plot(np.arange(1, len(best) + 1), best, color="black", label="best so far")
    if "phase" in trials:
        for phase, rows in trials.groupby("phase", sort=False):
            ax.scatter(rows.index.to_numpy() + 1, rows["val_acc"], s=10, label=phase)
    ax.set_xlabel("trained architectures")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Best-so-far accuracy")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_predicted_vs_measured(trials: pd.DataFrame, path: Path) -> Path:
    """The predictor's score before training against the measured accuracy."""
    fig, ax = plt.subplots(figsize=(5, 5))
    known = trials.dropna(subset=["predicted", "val_acc"]) if "predicted" in trials \
        else trials.iloc[:0]
    if len(known):
        for phase, rows in known.groupby("phase", sort=False):
            ax.scatter(rows["predicted"], rows["val_acc"], s=14, label=phase)
        low = float(min(known["predicted"].min(), known["val_acc"].min()))
        high = float(max(known["predicted"].max(), known["val_acc"].max()))
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no predicted scores recorded", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("predicted validation accuracy")
    ax.set_ylabel("measured validation accuracy")
    ax.set_title("Predictor: predicted vs. measured")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(out_dir: Path, trials: pd.DataFrame,
                pareto: pd.DataFrame | None) -> dict[str, Path]:
    """Write the three PNG plots into ``out_dir/plots`` and return their paths."""
    plots = Path(out_dir) / "plots"
    trials = trials.reset_index(drop=True)
    return {
        "accuracy_vs_params": plot_accuracy_vs_params(
            trials, pareto, plots / PLOT_FILES["accuracy_vs_params"]),
        "best_so_far": plot_best_so_far(trials, plots / PLOT_FILES["best_so_far"]),
        "predicted_vs_measured": plot_predicted_vs_measured(
            trials, plots / PLOT_FILES["predicted_vs_measured"]),
    }
