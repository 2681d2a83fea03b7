"""Local search on digits: Scheme C compresses a trained MLP, NeST cuts a LeNet's FLOPs.

(a) An MLP 64-256-128-10 is trained on digits (the paper's small-data settings: Adam,
    lr 0.01, weight decay 1e-3, 30 epochs), then local search runs Schemes A, B and C on
    it as parallel Ray tasks. Target: Scheme C reaches >= 3x fewer parameters with test
    accuracy at most 0.5 points below the start.
(b) A LeNet-style CNN (conv 6 and 16 filters, 3x3, max pooling; FC 120-84-40) is trained
    on the 8x8 digit images, then Scheme C (classifier only) and NeST run on it. Target:
    NeST reaches >= 2x fewer FLOPs with at most 1 point of test accuracy lost.

Each scheme's model is chosen on validation data only: the fewest parameters (MLP) or
FLOPs (CNN) among the steps whose validation accuracy is at least the start's. Test
accuracy is then read off for that model. The search runs once per seed (same trained
start). Prints everything and writes the "Local search" section of benchmarks/RESULTS.md
(other sections are kept).

    python benchmarks/bench_local_search.py [--seeds 0 1 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd
import ray
import torch

from steerage_ray.data import load_dataset
from steerage_ray.local_search import Candidate, run_local_search
from steerage_ray.models import build_model, count_flops, count_params
from steerage_ray.training import TrainSettings, settings_for, train_model

from _results import RESULTS, cpu_model, today, write_section

SECTION = "## Local search"

MLP = {"num_layers": 2, "neurons_1": 256, "neurons_2": 128, "quant_bits": 32}
MLP_START = settings_for("digits", "ffnn")                      # Adam 0.01, wd 1e-3, 30 ep
MLP_STEP = settings_for("digits", "ffnn", epochs=10, lr=0.003)  # fine-tuning after each op
MLP_ITERATIONS = 24  # an upper bound: the pruning guard may end a scheme earlier

LENET = {"kernel_size": 3, "conv1_filters": 6, "pool1": "max", "conv2_filters": 16,
         "pool2": "max", "fc1": 120, "fc2": 84, "fc3": 40, "quant_bits": 32, "image_size": 8}
LENET_START = TrainSettings(epochs=40, batch_size=64, lr=0.005, weight_decay=1e-4)
LENET_STEP = TrainSettings(epochs=10, batch_size=64, lr=0.003, weight_decay=1e-4)
LENET_ITERATIONS = 20

PAPER = ("Paper reference points (MNIST, not comparable data): LeNet-300-100 266k -> 26k "
         "weights at +0.1 points (STEERAGE GS+LS, Table 5); LeNet-5 131k -> 9.9k weights "
         "(Table 7).")


def trained_candidate(family: str, config: dict, dataset, settings: TrainSettings) -> tuple:
    model = build_model(family, config, dataset.input_shape, dataset.n_classes, seed=0)
    result = train_model(model, dataset, settings)
    start = dict(val_acc=result.best_val_acc, test_acc=result.test_acc,
                 params=count_params(model), flops=count_flops(model, dataset.input_shape))
    return Candidate(family, config, model.state_dict()), start


def chosen_step(history: pd.DataFrame, start_val: float, cost: str) -> pd.Series:
    """Validation-only choice: the cheapest step no less accurate than the start."""
    eligible = history[history["val_acc"] >= start_val - 1e-12]
    return eligible.sort_values([cost, "val_acc"], ascending=[True, False]).iloc[0]


def experiment(name, family, config, dataset, start_settings, step_settings, iterations,
               schemes, seeds, target_scheme, cost, target_ratio, max_loss):
    candidate, start = trained_candidate(family, config, dataset, start_settings)
    print(f"\n{name}: start val {start['val_acc']:.4f} test {start['test_acc']:.4f} "
          f"params {start['params']} flops {start['flops']}", flush=True)
    rows, paretos = [], {}
    for seed in seeds:
        began = time.perf_counter()
        result = run_local_search(candidate, dataset, schemes=schemes, iterations=iterations,
                                  settings=step_settings, seed=seed)
        seconds = time.perf_counter() - began
        if result.failures:
            raise RuntimeError(f"schemes failed: {result.failures}")
        paretos[seed] = result.pareto
        for scheme, history in result.histories.items():
            step = chosen_step(history, start["val_acc"], cost)
            ratio = start[cost] / step[cost]
            loss = 100 * (start["test_acc"] - step["test_acc"])
            met = ratio >= target_ratio and loss <= max_loss if scheme == target_scheme else None
            rows.append(dict(seed=seed, scheme=scheme, step=int(step["step"]),
                             operation=step["operation"], val_acc=step["val_acc"],
                             test_acc=step["test_acc"], params=int(step["params"]),
                             flops=int(step["flops"]), ratio=ratio, test_loss_points=loss,
                             target_met=met, run_seconds=seconds))
            print(f"  seed {seed} {scheme}: step {int(step['step'])} ({step['operation']}) "
                  f"val {step['val_acc']:.4f} test {step['test_acc']:.4f} params "
                  f"{int(step['params'])} flops {int(step['flops'])} -> {ratio:.2f}x fewer "
                  f"{cost}, test {0.0 - loss + 0.0:+.2f} points"
                  + ("" if met is None else f", target {'MET' if met else 'MISSED'}"),
                  flush=True)
        print(f"  seed {seed}: {seconds:.1f} s for schemes {schemes}\n{result.pareto}", flush=True)
    return start, pd.DataFrame(rows), paretos


def table(frame: pd.DataFrame, columns: list[str]) -> str:
    def cell(column, value):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if column in ("val_acc", "test_acc"):
            return f"{value:.4f}"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |"
              for _, row in frame.iterrows()]
    return "\n".join(lines)


def summary(rows: pd.DataFrame, target_scheme: str, cost: str) -> str:
    target = rows[rows["scheme"] == target_scheme]
    met = int(target["target_met"].astype(bool).sum())
    change = 0.0 - target["test_loss_points"]
    return (f"Scheme {target_scheme}: {target['ratio'].min():.2f}-{target['ratio'].max():.2f}x "
            f"fewer {cost}, test accuracy change {change.min() + 0.0:+.2f} to "
            f"{change.max() + 0.0:+.2f} points; target met in {met} of "
            f"{len(target)} seeds. Wall time per seed (all schemes in parallel): "
            f"{rows['run_seconds'].min():.0f}-{rows['run_seconds'].max():.0f} s.")


def describe(settings: TrainSettings) -> str:
    return (f"{settings.epochs} epochs ({settings.optimizer}, lr {settings.lr}, weight decay "
            f"{settings.weight_decay}, batch {settings.batch_size})")


def machine() -> str:
    return (f"{os.cpu_count()} cores ({cpu_model()}), shared with other jobs; Python "
            f"{platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}")


def section_text(command: str, parts: list[tuple]) -> str:
    date = today()
    text = [f"{SECTION}\n", f"`{command}` on {date}. Machine: {machine()}.\n",
            "Schemes run as parallel Ray tasks (`run_local_search`, 2 CPUs, one "
            "per task). Each scheme's model is chosen on validation only: the fewest "
            "parameters (MLP) or FLOPs (CNN) among its steps whose validation accuracy is at "
            "least the start's; its test accuracy is then reported. digits has 359 validation "
            "and 360 test examples: one example is 0.28 points. FLOPs are effective FLOPs "
            "(2 per active weight per output position, linear and conv layers).\n",
            PAPER + "\n"]
    for title, description, target_scheme, cost, start, rows, paretos in parts:
        text.append(f"### {title}\n\n{description}\n")
        text.append(f"Start: validation {start['val_acc']:.4f}, test {start['test_acc']:.4f}, "
                    f"{start['params']} parameters, {start['flops']} FLOPs.\n")
        text.append(summary(rows, target_scheme, cost) + "\n")
        text.append(table(rows, ["seed", "scheme", "step", "operation", "val_acc", "test_acc",
                                 "params", "flops", "ratio", "test_loss_points",
                                 "target_met"]) + "\n")
        first_seed = min(paretos)
        text.append(f"Pareto set (validation accuracy vs parameters, all schemes, seed "
                    f"{first_seed}):\n")
        text.append(table(paretos[first_seed], ["scheme", "step", "operation", "val_acc",
                                                "test_acc", "params", "flops"]) + "\n")
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    mlp = experiment("(a) MLP 64-256-128-10, Schemes A/B/C", "ffnn", MLP,
                     load_dataset("digits"), MLP_START, MLP_STEP, MLP_ITERATIONS,
                     ("A", "B", "C"), args.seeds, "C", "params", 3.0, 0.5)
    cnn = experiment("(b) LeNet 6-16 / 120-84-40 on 8x8 images, C and NeST", "lenet", LENET,
                     load_dataset("digits_images"), LENET_START, LENET_STEP, LENET_ITERATIONS,
                     ("C", "nest"), args.seeds, "nest", "flops", 2.0, 1.0)
    ray.shutdown()
    command = "python benchmarks/bench_local_search.py" + (
        f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1, 2] else "")
    text = section_text(command, [
        ("(a) Scheme C on an MLP (target: >= 3x fewer parameters, <= 0.5 points test loss)",
         f"Start: MLP 64-256-128-10 trained {describe(MLP_START)}. Each step trains "
         f"{describe(MLP_STEP)}; {MLP_ITERATIONS} operations per scheme, default "
         "`ScannOptions`.", "C", "params", *mlp),
        ("(b) NeST on a LeNet (target: >= 2x fewer FLOPs, <= 1 point test loss)",
         f"Start: LeNet {LENET} trained {describe(LENET_START)}. Each step trains "
         f"{describe(LENET_STEP)}; {LENET_ITERATIONS} operations per scheme, default "
         "`NestOptions` (Scheme C acts on the classifier only).", "nest", "flops", *cnn),
    ])
    if not args.no_write:
        write_section(SECTION, text)
        print(f"\nwrote the '{SECTION[3:]}' section of {RESULTS}")


if __name__ == "__main__":
    main()
