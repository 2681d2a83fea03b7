"""Time the accuracy predictor and the evolutionary search on the FFNN space (one thread).

The global search refits the predictor and runs the EES on the Tune driver between
trials, so both must be fast: targets are a refit on 400 observations in < 1 s and an
EES of 100 architectures x 200 generations in < 2 s. Targets here are SYNTHETIC (a smooth
function of the FFNN encoding plus Gaussian noise, see ``synthetic_accuracy``); they
measure speed, not predictor quality on real trained architectures.

``--study`` adds two measurements behind design decisions (a few minutes): the default
predictor against early stopping and other one-change variants, by 5-fold CV on
synthetic problems of 100-400 samples; and
the per-fit cost of the six regressors of ``compare_regressors`` on 300 samples
(10-fold), from which the cost of the paper's leave-one-out protocol is projected.

Prints the tables and writes the "Predictor and EES speed" section of
benchmarks/RESULTS.md (other sections are kept).

    python benchmarks/bench_predictor.py [--repeats 5] [--study]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import lightgbm
import numpy as np
import sklearn
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.evolution import evolutionary_search
from steerage_ray.predictor import AccuracyPredictor, compare_regressors, rank_correlation
from steerage_ray.space import SearchSpace, ffnn_space

from _results import RESULTS, cpu_model, today, write_section

SECTION = "## Predictor and EES speed"
# Per-method accuracy offsets of the synthetic surface (index = dr_method, 1-11).
_DR_EFFECT = np.array([0, .01, .008, .009, .01, .02, .005, .012, 0, -.02, .015, -.01])


def synthetic_accuracy(codes: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """SYNTHETIC validation accuracy of FFNN encodings (columns as in ``ffnn_space``).

    Grows with total width, prefers 2-3 layers, a DR ratio near 5 and some DR methods,
    and loses accuracy at 4 and 8 bits; plus N(0, noise) measurement noise.
    """
    layers, width = codes[:, 0], codes[:, 1:7].sum(axis=1)
    method, ratio, bits = codes[:, 7].astype(int), codes[:, 8], codes[:, 9]
    return (0.80 + 0.05 * np.log(width / 50) / np.log(72) - 0.006 * (layers - 2.5) ** 2
            + _DR_EFFECT[method] - 0.0008 * (ratio - 5) ** 2
            + np.select([bits == 4, bits == 8], [-0.06, -0.008], 0.0)
            + rng.normal(0.0, noise, len(codes)))


def observations(space: SearchSpace, n: int, seed: int, noise: float = 0.005):
    rng = np.random.default_rng(seed)
    codes = space.encode_many(space.random(n, rng))
    return codes, synthetic_accuracy(codes, noise, rng)


def median_seconds(function, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def speed_rows(repeats: int) -> list[tuple[str, float, str]]:
    """(what, median seconds, note) for refit, CV score, predict and EES runs."""
    space = ffnn_space()
    X, y = observations(space, 400, seed=0)
    predictor = AccuracyPredictor().fit(X, y)
    batch = X[:100]
    calls = 200
    result = evolutionary_search(space, predictor.predict, population=100, generations=200)
    constraint = ResourceConstraint("ffnn", (561,), 6, max_params=50_000)
    bound = evolutionary_search(space, predictor.predict, constraint=constraint)
    return [
        ("refit AccuracyPredictor, 400 samples", median_seconds(
            lambda: AccuracyPredictor().fit(X, y), repeats), "500 trees, n_jobs=1"),
        ("cross_val_kendall, 400 samples, 5 folds", median_seconds(
            lambda: predictor.cross_val_kendall(X, y), max(1, repeats // 2)), "5 refits"),
        ("predict 100 architectures (per call)", median_seconds(
            lambda: [predictor.predict(batch) for _ in range(calls)], 3) / calls, ""),
        ("EES 100 x 200 over the predictor", median_seconds(
            lambda: evolutionary_search(space, predictor.predict), repeats),
         f"{result.n_predictor_calls} predictor calls, {result.n_predicted} distinct "
         f"architectures predicted"),
        ("EES 100 x 200 with max_params=50k (d=561)", median_seconds(
            lambda: evolutionary_search(space, predictor.predict, constraint=constraint),
            repeats), f"{bound.n_predicted} feasible architectures predicted"),
    ]


def settings_rows(sizes=(100, 200, 400), noises=(0.005, 0.02), seeds=(0, 1, 2)):
    """5-fold MSE and Kendall tau of the default predictor and one-change variants."""
    space = ffnn_space()
    variants = {"default (500 trees)": variant(), "200 trees": variant(n_estimators=200),
                "early stopping (20% hold-out)": early_stopped,
                "min_child_samples=5": variant(min_child_samples=5),
                "no row/column subsampling": variant(subsample=1.0, colsample_bytree=1.0)}
    rows = []
    for noise in noises:
        for n in sizes:
            for name, fit_predict in variants.items():
                mse, tau, trees = [], [], []
                for seed in seeds:
                    X, y = observations(space, n, seed=seed, noise=noise)
                    predictions = np.empty(n)
                    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
                        predictions[test], used = fit_predict(X[train], y[train], X[test])
                        trees.append(used)
                    mse.append(np.mean((predictions - y) ** 2))
                    tau.append(rank_correlation(y, predictions))
                rows.append((noise, n, name, np.mean(mse), np.mean(tau), np.mean(trees)))
    return rows


def variant(**params):
    def fit_predict(X_train, y_train, X_test):
        model = AccuracyPredictor(**params).fit(X_train, y_train)
        return model.predict(X_test), model.n_estimators
    return fit_predict


def early_stopped(X_train, y_train, X_test):
    """Pick the tree count that minimises hold-out MSE (an upper bound on what patience-
    based early stopping finds), then refit on all training rows with that many trees."""
    order = np.random.default_rng(0).permutation(len(y_train))
    hold, fit = order[: len(order) // 5], order[len(order) // 5:]
    booster = AccuracyPredictor().fit(X_train[fit], y_train[fit]).booster_
    errors = [np.mean((booster.predict(X_train[hold], num_iteration=k) - y_train[hold]) ** 2)
              for k in range(10, 501, 10)]
    best = 10 * (int(np.argmin(errors)) + 1)
    return AccuracyPredictor(n_estimators=best).fit(X_train, y_train).predict(X_test), best


def regressor_cost_rows():
    space = ffnn_space()
    X, y = observations(space, 300, seed=0)
    table = compare_regressors(X, y, seed=0, loo=False, folds=10)
    return [(row.model, row.fit_seconds, 300 * row.fit_seconds) for row in table.itertuples()]


def machine() -> str:
    return (f"{os.cpu_count()} cores ({cpu_model()}), shared with other jobs; Python "
            f"{platform.python_version()}, numpy {np.__version__}, lightgbm "
            f"{lightgbm.__version__}, scikit-learn {sklearn.__version__}; one thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--study", action="store_true",
                        help="add the predictor-settings study and the regressor fit costs")
    args = parser.parse_args()
    date = today()
    command = "python benchmarks/bench_predictor.py" + (" --study" if args.study else "")
    lines = [SECTION, "",
             f"`{command}` on {date}. Machine: {machine()}. FFNN space (Table 2, 10 "
             "encoded dimensions); targets are SYNTHETIC (smooth function of the encoding "
             "+ noise), so nothing here measures predictor quality on trained networks.",
             "",
             f"| operation | median seconds ({args.repeats} runs) | note |", "|---|---|---|"]
    with threadpool_limits(1):
        for what, seconds, note in speed_rows(args.repeats):
            lines.append(f"| {what} | {seconds:.4f} | {note} |")
        if args.study:
            lines += ["", "Predictor settings: the default against one change at a time "
                      "(5-fold CV on SYNTHETIC targets, mean of 3 seeds). Fixed 500 trees vs "
                      "early stopping: neither wins everywhere (500 trees best on low-noise "
                      "targets, fewer trees slightly better on noisy ones); we keep the "
                      "paper's fixed 500, which takes no hold-out from ~100 observations.",
                      "",
                      "| noise sd | samples | variant | MSE | Kendall tau | trees |",
                      "|---|---|---|---|---|---|"]
            for noise, n, name, mse, tau, trees in settings_rows():
                lines.append(f"| {noise} | {n} | {name} | {mse:.2e} | {tau:.3f} | "
                             f"{trees:.0f} |")
            lines += ["", "Regressor fit cost on 300 samples (10-fold; one leave-one-out "
                      "run of `compare_regressors` costs about 300 fits):", "",
                      "| model | seconds per fit | projected LOO seconds |", "|---|---|---|"]
            for model, per_fit, loo in regressor_cost_rows():
                lines.append(f"| {model} | {per_fit:.4f} | {loo:.0f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(SECTION, section)
    print(f"wrote the '{SECTION[3:]}' section of {RESULTS}")


if __name__ == "__main__":
    main()
