"""Experiment reports: the paper-style summary table and the three plots.

Inputs are plain DataFrames so a report can be rebuilt from the files of an experiment
directory without Ray:

- ``trials``: one row per trained architecture, in completion order, with columns
  ``phase`` (initial / round-i / final), ``val_acc``, and when known ``test_acc``,
  ``params``, ``flops``, ``predicted`` (the predictor's score before training).
- ``pareto``: local-search results with ``scheme``, ``val_acc``, ``test_acc``,
  ``params``, ``flops``.
- ``front``: the global-search Pareto front (several objectives), ``pareto_front.csv``.
- ``baseline`` / ``winner``: dicts with ``test_acc``, ``params``, ``flops`` (and
  ``val_acc`` when known).

Two local-search points are shown, both picked by ``pareto.choose`` on validation
accuracy only: the most accurate, and the compact one (the smallest whose validation
accuracy is within a tolerance of the most accurate's, 0.5 points by default).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless workers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from steerage_ray.pareto import DEFAULT_SELECT_TOLERANCE, choose  # noqa: E402
from steerage_ray.precision import size_kb  # noqa: E402

PLOT_FILES = {
    "accuracy_vs_params": "accuracy_vs_params.png",
    "best_so_far": "best_so_far.png",
    "predicted_vs_measured": "predicted_vs_measured.png",
}


#: The summary rows of the two local-search points, by ``pareto.choose`` name.
LS_ROWS = {"most_accurate": "STEERAGE (GS+LS, most accurate)",
           "compact": "STEERAGE (GS+LS, compact)"}


def summary_table(baseline: dict | None, winner: dict | None,
                  pareto: pd.DataFrame | None,
                  tolerance: float = DEFAULT_SELECT_TOLERANCE) -> pd.DataFrame:
    """Baseline vs GS vs GS+LS rows as in the paper's Tables 3-5.

    Two GS+LS rows: the most accurate local-search point and the compact one, the
    smallest whose validation accuracy is within ``tolerance`` (a fraction) of the most
    accurate's (``pareto.choose``); both rows are shown even when they are the same
    point. ``point`` names the scheme and step; compression is relative to the
    baseline's parameter count. ``bits`` is the precision each model is kept at (the
    baseline is the float network; a result without ``quant_bits``, from a directory
    written before they had one, has none) and ``size_kb`` its non-zero weights at it.
    """
    rows = []
    if baseline:
        rows.append(_summary_row("Baseline", {"quant_bits": 32, **baseline}))
    if winner:
        rows.append(_summary_row("STEERAGE (GS)", winner))
    if pareto is not None and len(pareto):
        for which, method in LS_ROWS.items():
            point = choose(pareto, which, tolerance)
            rows.append(_summary_row(method, point.to_dict(),
                                     f"{point['scheme']}:{int(point['step'])}"))
    table = pd.DataFrame(rows, columns=["method", "val_acc", "test_acc", "params", "flops",
                                        "bits", "point"])
    table.insert(6, "size_kb", size_kb(table["params"], table["bits"]))
    if baseline and baseline.get("params"):
        table["compression"] = baseline["params"] / table["params"]
    return table


def _summary_row(method: str, result: dict, point: str = "-") -> dict:
    return {"method": method, "val_acc": result.get("val_acc"),
            "test_acc": result.get("test_acc"), "params": result.get("params"),
            "flops": result.get("flops"), "bits": result.get("quant_bits"), "point": point}


def selection_note(tolerance: float = DEFAULT_SELECT_TOLERANCE) -> str:
    """One line under the summary saying how the two GS+LS rows were picked."""
    return (f"GS+LS points are picked on validation accuracy only: most accurate, and "
            f"compact = the smallest within {100 * tolerance:g} points of it "
            f"(--select-tolerance); point = local-search scheme:step.")


def format_summary(table: pd.DataFrame) -> str:
    """The summary table as aligned text for the terminal and RESULTS.md."""
    shown = table.copy()
    for column in ("val_acc", "test_acc"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: f"{100 * v:.2f}%"
                                              if pd.notna(v) else "-")
    shown["params"] = shown["params"].map(_human)
    shown["flops"] = shown["flops"].map(_human)
    if "bits" in shown:  # summary.csv files written before models had a precision lack them
        shown["bits"] = shown["bits"].map(lambda v: f"{int(v)}" if pd.notna(v) else "-")
        shown["size_kb"] = shown["size_kb"].map(lambda v: f"{v:.2f}" if pd.notna(v) else "-")
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
                            path: Path, baseline: dict | None = None,
                            tolerance: float = DEFAULT_SELECT_TOLERANCE,
                            front: pd.DataFrame | None = None,
                            start: dict | None = None) -> Path:
    """Fig. 4 style: test (else validation) accuracy against parameters, GS and GS+LS,
    with the baseline and the two GS+LS picks of the summary (most accurate, compact)
    marked.

    With a global-search Pareto front (several objectives) the front is drawn as a
    staircase with the local-search Pareto points and the member local search started
    from (``start``, ``local_search/start.json``); the axis is then *validation*
    accuracy, the one the front is non-dominated in (test accuracy would draw a front
    that zigzags)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    acc = "test_acc" if front is None and "test_acc" in trials \
        and trials["test_acc"].notna().any() else "val_acc"
    marked = []  # the accuracies the y-axis must show
    if front is not None and len(front) and "params" in front:
        marked += _draw_front(ax, front, start)
    if pareto is not None and len(pareto):
        for scheme, points in pareto.groupby("scheme"):
            points = points.sort_values("params")
            ax.plot(points["params"], points[acc], marker="o", markersize=4, zorder=3,
                    label=f"GS+LS Pareto points, scheme {scheme}")
            marked += list(points[acc])
        # the compact pick under the most accurate one, so both show when they coincide
        picks = (("compact", "D", "tab:green", 190,
                  f"GS+LS compact (smallest within {100 * tolerance:g} val. points)"),
                 ("most_accurate", "*", "tab:red", 150, "GS+LS most accurate (val.)"))
        for which, marker, color, size, label in picks:
            point = choose(pareto, which, tolerance)
            ax.scatter([point["params"]], [point[acc]], marker=marker, s=size, color=color,
                       edgecolors="black", zorder=5, label=label)
    if baseline and baseline.get("params") and baseline.get(acc) is not None:
        ax.scatter([baseline["params"]], [baseline[acc]], marker="X", s=140, color="black",
                   zorder=5, label="baseline")
        ax.axhline(baseline[acc], color="black", linewidth=0.8, linestyle=":")
        marked.append(baseline[acc])
    if "params" in trials:
        shown = trials[acc].dropna()
        marked += list(shown.nlargest(3))
        low = min(marked) - 0.03 if marked else -np.inf
        below = int((shown < low).sum())
        note = f"; {below} below the axis" if below else ""
        ax.scatter(trials["params"], trials[acc], s=14, alpha=0.5, color="tab:gray",
                   zorder=2, label=f"global search (trained architectures{note})")
        if below:
            ax.set_ylim(bottom=low)
        if marked:
            ax.set_ylim(top=min(1.0, max(marked)) + 0.01)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (non-zero weights)")
    ax.set_ylabel("test accuracy" if acc == "test_acc" else "validation accuracy")
    ax.set_title("Accuracy vs. parameters")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _draw_front(ax, front: pd.DataFrame, start: dict | None,
                x: str = "params") -> list[float]:
    """The global-search front as a staircase in (``x``, val_acc); the local-search
    start ringed. Returns the accuracies drawn."""
    points = front.sort_values(x)
    ax.step(points[x], points["val_acc"], where="post", color="tab:blue",
            linewidth=1.2, zorder=3)
    ax.scatter(points[x], points["val_acc"], s=30, color="tab:blue", zorder=4,
               label=f"global-search Pareto front ({len(points)} architectures)")
    if start is not None and start.get("index") is not None \
            and start["index"] < len(front):
        member = front.iloc[start["index"]]
        ax.scatter([member[x]], [member["val_acc"]], s=220, facecolors="none",
                   edgecolors="tab:purple", linewidths=2, zorder=6,
                   label=f"local-search start ({start['from']}, front row "
                         f"{start['index']})")
    return list(points["val_acc"])


def plot_accuracy_vs_objective(trials: pd.DataFrame, front: pd.DataFrame, x: str,
                               path: Path, start: dict | None = None) -> Path:
    """The front of a search on another size objective than parameters (``flops``,
    ``latency``): validation accuracy against ``x`` for every trained architecture,
    the front drawn (local-search points have no such value and are left out)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(trials[x], trials["val_acc"], s=14, alpha=0.5, color="tab:gray", zorder=2,
               label="global search (trained architectures)")
    _draw_front(ax, front, start, x)
    ax.set_xscale("log")
    ax.set_xlabel("latency (s per forward pass)" if x == "latency" else x)
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Accuracy vs. {x}")
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


def write_plots(out_dir: Path, trials: pd.DataFrame, pareto: pd.DataFrame | None,
                baseline: dict | None = None,
                tolerance: float = DEFAULT_SELECT_TOLERANCE,
                front: pd.DataFrame | None = None,
                start: dict | None = None, front_x: str = "params") -> dict[str, Path]:
    """Write the PNG plots into ``out_dir/plots`` and return their paths (``front``,
    ``start``: see :func:`plot_accuracy_vs_params`; ``front_x``: the size objective of
    the front, when it is not ``params`` the front gets ``accuracy_vs_<front_x>.png``)."""
    plots = Path(out_dir) / "plots"
    trials = trials.reset_index(drop=True)
    extra = {}
    if front is not None and front_x != "params":
        extra[f"accuracy_vs_{front_x}"] = plot_accuracy_vs_objective(
            trials, front, front_x, plots / f"accuracy_vs_{front_x}.png", start)
        front = None
    return {
        **extra,
        "accuracy_vs_params": plot_accuracy_vs_params(
            trials, pareto, plots / PLOT_FILES["accuracy_vs_params"], baseline, tolerance,
            front, start),
        "best_so_far": plot_best_so_far(trials, plots / PLOT_FILES["best_so_far"]),
        "predicted_vs_measured": plot_predicted_vs_measured(
            trials, plots / PLOT_FILES["predicted_vs_measured"]),
    }
