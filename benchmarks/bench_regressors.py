"""Paper Fig. 3 on architectures actually trained: which regressor predicts accuracy best?

For each dataset (digits, MNIST-1D), ``--n`` architectures are drawn from the FFNN space
sized for it (``ffnn_space(n_features).sobol(n, seed)``) and trained for real: the list
is replayed through Tune (``BasicVariantGenerator(points_to_evaluate=...)``) into the
global search's own trainable (``make_trainable``, ``train_architecture``), 1 CPU per
trial, 2 trials at a time. Each architecture's label is the validation accuracy the
trainable reports (best epoch). ``compare_regressors`` then scores the paper's six
regressors on (encoded architecture, label): leave-one-out, the paper's protocol, or
``--folds K`` shuffled K-fold when leave-one-out does not fit the time.

Trained (architecture, accuracy) pairs are cached in
``benchmarks/data/fig3_<dataset>_n<N>_epochs<E>_seed<S>.csv``; a rerun with the same
settings reuses them (``--retrain`` forces training), so only the regression part runs.

Prints the tables and writes the "Regressor comparison (paper Fig. 3)" section of
benchmarks/RESULTS.md (other sections are kept).

    python benchmarks/bench_regressors.py [--n 150] [--seed 0] [--datasets digits mnist1d]
        [--epochs 8 15] [--folds K] [--retrain] [--no-write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import ray
from threadpoolctl import threadpool_limits

from steerage_ray.data import Dataset, load_dataset
from steerage_ray.predictor import compare_regressors
from steerage_ray.space import SearchSpace, ffnn_space

from _results import RESULTS, markdown_table, today, write_section
from bench_search_comparison import (DEFAULT_EPOCHS, machine, run_trials, start_ray,
                                     training_constants, trial_frame, variant_generator)

SECTION = "## Regressor comparison (paper Fig. 3)"
DATA_DIR = Path(__file__).with_name("data")
DEFAULT_N = 150


def cache_path(dataset_name: str, n: int, epochs: int, seed: int) -> Path:
    return DATA_DIR / f"fig3_{dataset_name}_n{n}_epochs{epochs}_seed{seed}.csv"


def architectures(frame: pd.DataFrame, space: SearchSpace) -> np.ndarray:
    """Encoded architectures of a trial frame (a CSV stores inactive widths as NaN)."""
    records = frame[list(space.names)].to_dict("records")
    return space.encode_many([{name: None if pd.isna(value) else value
                               for name, value in record.items()} for record in records])


def train_sample(dataset: Dataset, space: SearchSpace, configs: list[dict], epochs: int,
                 seed: int, storage_path: str) -> pd.DataFrame:
    """Train each config once through Tune; rows come back in the order of ``configs``.

    The param space holds placeholders (None) for the architecture keys, which
    ``points_to_evaluate`` fills: Tune samples nothing, it replays the list.
    """
    start_ray()
    param_space = {**{name: None for name in space.names}, **training_constants(seed, epochs)}
    grid = run_trials(dataset, param_space, variant_generator(points_to_evaluate=configs),
                      len(configs), storage_path, f"fig3-{dataset.name}")
    frame = trial_frame(grid, space)
    position = {row.tobytes(): i for i, row in enumerate(architectures(frame, space))}
    return frame.iloc[[position[row.tobytes()] for row in space.encode_many(configs)]]


def labelled_sample(dataset: Dataset, n: int, epochs: int, seed: int, retrain: bool,
                    storage_path: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(trained rows, encoded architectures, where they came from): the cached CSV when it
    holds exactly this Sobol sample, else a fresh training (then cached)."""
    space = ffnn_space(n_features=dataset.n_features)
    configs = space.sobol(n, seed)
    X = space.encode_many(configs)
    path = cache_path(dataset.name, n, epochs, seed)
    if path.exists() and not retrain:
        cached = pd.read_csv(path)
        if len(cached) == len(X) and np.allclose(architectures(cached, space), X):
            return cached, X, f"cached in {path.relative_to(path.parents[2])}"
        print(f"{path} does not hold this sample (space changed?): retraining", flush=True)
    began = time.perf_counter()
    frame = train_sample(dataset, space, configs, epochs, seed, storage_path)
    source = f"trained now in {time.perf_counter() - began:.0f} s wall"
    DATA_DIR.mkdir(exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")
    return frame, X, source


def spread_row(name: str, frame: pd.DataFrame, epochs: int, source: str) -> list[str]:
    accuracy = 100 * frame["val_acc"]
    quartiles = np.percentile(accuracy, [0, 25, 50, 75, 100])
    return [name, str(len(frame)), str(epochs), *(f"{q:.2f}" for q in quartiles),
            f"{accuracy.mean():.2f}", f"{accuracy.std(ddof=0):.2f}",
            str(int(frame["diverged"].sum())), f"{frame['seconds'].sum():.0f}", source]


def regressor_rows(name: str, frame: pd.DataFrame, X: np.ndarray, epochs: int, seed: int,
                   folds: int | None) -> list[list[str]]:
    y = frame["val_acc"].to_numpy(dtype=float)
    with threadpool_limits(1):
        table = compare_regressors(X, y, seed=seed, loo=folds is None, folds=folds or 10)
    variance = float(np.var(y))
    return [[name, row.model, row.protocol, str(len(y)), str(epochs), f"{row.mse:.2e}",
             f"{row.mse / variance:.3f}", f"{row.kendall_tau:.3f}", f"{row.fit_seconds:.4f}"]
            for row in table.itertuples()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="architectures per dataset")
    parser.add_argument("--seed", type=int, default=0,
                        help="Sobol sample, trial seeds and regressor seeds")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_EPOCHS))
    parser.add_argument("--epochs", type=int, nargs="+",
                        help="epochs per training, one per dataset (default: digits 8, "
                             "mnist1d 15)")
    parser.add_argument("--folds", type=int, help="K-fold CV instead of leave-one-out")
    parser.add_argument("--retrain", action="store_true", help="ignore cached trainings")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    epochs = args.epochs or [DEFAULT_EPOCHS.get(name, 10) for name in args.datasets]
    if len(epochs) != len(args.datasets):
        parser.error(f"--epochs needs one value per dataset ({len(args.datasets)}), "
                     f"got {len(epochs)}")
    began = time.perf_counter()
    spreads, regressors = [], []
    with tempfile.TemporaryDirectory(prefix="bench-fig3-") as storage_path:
        for name, n_epochs in zip(args.datasets, epochs):
            dataset = load_dataset(name)
            frame, X, source = labelled_sample(dataset, args.n, n_epochs, args.seed,
                                               args.retrain, storage_path)
            spreads.append(spread_row(name, frame, n_epochs, source))
            print(" | ".join(spreads[-1]), flush=True)
            regressors += regressor_rows(name, frame, X, n_epochs, args.seed, args.folds)
            print("\n".join(" | ".join(row) for row in regressors[-6:]), flush=True)
    ray.shutdown()
    total = time.perf_counter() - began
    protocol = "leave-one-out" if args.folds is None else f"{args.folds}-fold"
    defaults = (args.n == DEFAULT_N and args.seed == 0 and args.folds is None
                and args.datasets == list(DEFAULT_EPOCHS)
                and epochs == list(DEFAULT_EPOCHS.values()))
    command = "python benchmarks/bench_regressors.py" + ("" if defaults else (
        f" --n {args.n} --seed {args.seed} --datasets {' '.join(args.datasets)} --epochs "
        f"{' '.join(map(str, epochs))}" + ("" if args.folds is None else f" --folds {args.folds}")))
    section = "\n".join([
        SECTION, "",
        f"`{command}` on {today()}, {total / 60:.1f} min wall in total. Machine: {machine()}; "
        f"regressors fitted on one thread.", "",
        "The paper compares six regressors by leave-one-out MSE on 300 sampled "
        "architectures and picks boosted decision trees, which had the smallest MSE. Here: "
        f"per dataset, {args.n} architectures of the Sobol sample (seed {args.seed}) of "
        "`ffnn_space(n_features)` (Table 2: 1-6 layers of 50-600 neurons, 11 DR methods, "
        "DR ratio, quantization bits), each trained once for real by the global search's "
        "trainable through Tune (Adam, lr 0.01, weight decay 1e-3, batch 128, the epochs "
        f"below, trial seed {args.seed}). Label = the validation accuracy the trainable "
        "reports (best epoch). The regressors see the 10-dimensional encoding (inactive "
        f"widths = 0). Protocol: {protocol}. MSE is on accuracy as a fraction; MSE / var "
        "divides it by the labels' variance (always predicting the mean scores about 1, "
        "so lower is better and 1 - MSE/var is the held-out R^2). Kendall tau compares "
        "held-out predictions with the labels (what the search's ranking needs). fit s = "
        "mean seconds per fit.", "",
        "The trained sample (validation accuracy in %; training s = sum of trial times):", "",
        markdown_table(["dataset", "N", "epochs", "min", "25%", "median", "75%", "max", "mean",
                        "std", "diverged", "training s", "pairs"], spreads), "",
        markdown_table(["dataset", "model", "protocol", "N", "epochs", "MSE", "MSE / var",
                        "Kendall tau", "fit s"], regressors), ""])
    print("\n" + section)
    if not args.no_write:
        write_section(SECTION, section)
        print(f"wrote the '{SECTION[3:]}' section of {RESULTS}")


if __name__ == "__main__":
    main()
