"""Time the 11 dimensionality-reduction methods and the 6 image filters.

Runs every DR method on digits (64 features) and MNIST-1D (40 features) for compression
ratios 2 and 5, timing fit + transform of all three splits (median of ``--repeats`` runs,
caching off) and measuring peak traced memory (numpy + Python allocations, tracemalloc)
in one extra run. ``--mnist-like`` adds a synthetic MNIST-sized table (60k x 784,
Gaussian clusters; real MNIST cannot be downloaded here) at ratio 10, which exercises
the subsampled fitting of methods 6-11. A second table times the six image filters.
BLAS runs on one thread so numbers are comparable on a shared machine.

Prints the tables and writes the "Dimensionality reduction" section of
benchmarks/RESULTS.md (other sections are kept).

    python benchmarks/bench_dr.py [--repeats 3] [--mnist-like]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from steerage_ray.data import (DR_METHODS, IMAGE_FILTERS, Dataset, downsample_images,
                               from_arrays, load_dataset, reduce_dimensions)

from _results import RESULTS, cpu_model, markdown_table, ram_gib, today, write_section

SECTION = "## Dimensionality reduction"


def measure(function, repeats: int) -> tuple[float, float]:
    """(median seconds over ``repeats`` untraced runs, peak traced MiB of one more run)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(seconds), peak


def mnist_like(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = np.arange(70_000) % 10
    X = (2 * rng.normal(size=(10, 784))[labels] + rng.normal(size=(70_000, 784))).astype(np.float32)
    return from_arrays("mnist_like", X[:60_000], labels[:60_000], X_test=X[60_000:],
                       y_test=labels[60_000:], val_fraction=1 / 6)


def synthetic_images(n: int, size: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, size, size)).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % 10
    return Dataset("synthetic_images", X, y, X[: n // 5], y[: n // 5], X[: n // 5], y[: n // 5],
                   n_classes=10, kind="image")


def dr_rows(repeats: int, with_mnist_like: bool) -> list[list[str]]:
    runs = [(load_dataset("digits"), (2, 5), repeats), (load_dataset("mnist1d"), (2, 5), repeats)]
    if with_mnist_like:
        runs.append((mnist_like(), (10,), 1))
    rows = []
    for dataset, ratios, runs_per_case in runs:
        for ratio in ratios:
            for index, name in enumerate(DR_METHODS, start=1):
                result = {}

                def run():
                    result["dataset"] = reduce_dimensions(dataset, index, ratio, cache=False)

                seconds, peak = measure(run, runs_per_case)
                meta = result["dataset"].meta
                rows.append([f"{index} {name}", dataset.name, f"{dataset.n_features}",
                             f"{ratio:g}", str(meta["dr_k"]), str(meta["dr_fit_rows"]),
                             f"{seconds:.3f}", f"{peak:.1f}"])
                print(" | ".join(rows[-1]), flush=True)
    return rows


def image_rows(repeats: int) -> list[list[str]]:
    cases = [(load_dataset("digits_images"), 4), (synthetic_images(10_000, 28), 14)]
    rows = []
    for dataset, size in cases:
        n_images = sum(len(X) for X in (dataset.X_train, dataset.X_val, dataset.X_test))
        for index, name in enumerate(IMAGE_FILTERS, start=1):
            seconds, peak = measure(lambda: downsample_images(dataset, index, size, cache=False),
                                    repeats)
            native = dataset.input_shape[1]
            rows.append([f"{index} {name}", dataset.name, f"{native}->{size}", str(n_images),
                         f"{seconds:.3f}", f"{1e6 * seconds / n_images:.1f}", f"{peak:.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def machine() -> str:
    memory = "" if ram_gib() is None else f", {ram_gib():.0f} GiB RAM"
    return (f"{os.cpu_count()} cores ({cpu_model()}){memory}; Python "
            f"{platform.python_version()}, "
            f"numpy {np.__version__}, scikit-learn {sklearn.__version__}; BLAS limited to 1 "
            f"thread; machine shared with other jobs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mnist-like", action="store_true",
                        help="add a synthetic 60k x 784 table at ratio 10")
    args = parser.parse_args()
    with threadpool_limits(1):
        dr = dr_rows(args.repeats, args.mnist_like)
        images = image_rows(args.repeats)
    date = today()
    command = "python benchmarks/bench_dr.py" + (" --mnist-like" if args.mnist_like else "")
    section = (
        f"{SECTION}\n\n"
        f"`{command}` on {date}. Machine: {machine()}.\n\n"
        "Fit + transform of train, validation and test (median of "
        f"{args.repeats} runs; 1 run for mnist_like), caching off, followed by "
        "re-standardization. Peak MiB = peak memory traced by tracemalloc (numpy + Python "
        "allocations) during one run. Methods 6-11 fit on at most 2000 training rows "
        "(fit rows column) and transform all rows in chunks. mnist_like is synthetic "
        "(Gaussian clusters, MNIST's shape and 50k/10k/10k split).\n\n"
        + markdown_table(["method", "dataset", "d", "ratio", "k", "fit rows", "seconds",
                          "peak MiB"], dr)
        + "\n\nImage downsampling (Pillow float mode, all splits, then re-standardization; "
        "synthetic_images = 10k random 28x28 training images, validation and test = 2k "
        "of them each):\n\n"
        + markdown_table(["filter", "dataset", "size", "images", "seconds", "us/image",
                          "peak MiB"], images)
        + "\n"
    )
    write_section(SECTION, section)
    print(f"\nwrote the '{SECTION[3:]}' section of {RESULTS}")


if __name__ == "__main__":
    main()
