"""Latency lookup table (ChamNet-style) against end-to-end measured latency, on this CPU.

For each family: build the table of every layer its preset space can produce
(``latency.profile_latency``: CPU, one thread, batch 1; its per-forward overhead term
is calibrated on 5 models drawn with seed 0), then draw 50 architectures from the same
space with seed 1, build each, time it end to end (``latency.measure_latency``, timed
like the table's entries: warm-up, median (``--statistic min``: minimum) of 11 loops
of >= 1 ms) and compare with
``estimate_latency``. Reported: median and 90th percentile of the absolute percentage
error (target: median <= 10 %), the same without the overhead term (the plain ChamNet
sum), Kendall's tau between estimate and measurement, and the table's build time.

Spaces: ``ffnn`` Table 2 on MNIST-1D's 40 features (every DR ratio's input width),
``lenet`` Table 6 at 28x28 (MNIST), ``resnet`` Table 8 (depth 18-50, image size 24 or
32, CIFAR-10's 3x32x32), 10 classes.

    python benchmarks/bench_latency.py [--families ffnn lenet resnet] [--n 50]
                                       [--max-load 2.5] [--no-write]

The machine is shared: the script pins itself to one core, waits (up to ``--wait``
minutes) for the 1-minute load average to drop below ``--max-load`` before each family,
and records the load next to the numbers. Per-architecture rows go to
``benchmarks/data/latency_<family>_cpu_<statistic>.csv``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau

from steerage_ray.complexity_estimate import estimate_complexity, model_input_shape
from steerage_ray.latency import (estimate_latency, measure_latency, profile_latency,
                                  space_layers)
from steerage_ray.models import build_model
from steerage_ray.space import get_preset

from _results import cpu_model, markdown_table, today, write_section

SECTION = "## Latency lookup table (ChamNet-style)"
DATA = Path(__file__).with_name("data")
SETUPS = {  # family -> (what, original input shape, space)
    "ffnn": ("Table 2, MNIST-1D (40 features)", (40,), lambda: get_preset("ffnn", n_features=40)),
    "lenet": ("Table 6, 28x28", (1, 28, 28), lambda: get_preset("lenet", image_size=28)),
    "resnet": ("Table 8, depth 18-50, 24/32 px", (3, 32, 32), lambda: get_preset("resnet")),
}
N_CLASSES = 10


def wait_for_quiet(max_load: float, wait_minutes: float) -> float:
    deadline = time.time() + 60 * wait_minutes
    while os.getloadavg()[0] > max_load and time.time() < deadline:
        print(f"  load {os.getloadavg()[0]:.1f} > {max_load}: waiting", flush=True)
        time.sleep(60)
    return os.getloadavg()[0]


def run_family(family: str, n: int, batch_size: int, statistic: str) -> dict:
    what, shape, make_space = SETUPS[family]
    space = make_space()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    table = profile_latency(family, space, shape, N_CLASSES, batch_size=batch_size,
                            threads=1, seed=0, statistic=statistic)
    build_seconds = time.perf_counter() - started
    print(f"  {family}: {len(table)} entries ({table.info['interpolated']} interpolated) in "
          f"{build_seconds:.1f} s, overhead {table.overhead * 1e6:.1f} us", flush=True)
    rows = []
    for index, config in enumerate(space.random(n, np.random.default_rng(1))):
        model_shape = model_input_shape(family, config, shape)
        model = build_model(family, config, model_shape, N_CLASSES, seed=index)
        measured = measure_latency(model, model_shape, batch_size=batch_size, threads=1,
                                   statistic=statistic)
        estimate = estimate_latency(table, family, config, shape, N_CLASSES)
        rows.append({"family": family, "index": index, "measured_s": measured,
                     "estimate_s": estimate, "sum_only_s": estimate - table.overhead,
                     "flops": estimate_complexity(family, config, shape, N_CLASSES).flops,
                     "config": repr(dict(config))})
    frame = pd.DataFrame(rows)
    frame["ape"] = (frame.estimate_s - frame.measured_s).abs() / frame.measured_s
    frame["ape_sum_only"] = (frame.sum_only_s - frame.measured_s).abs() / frame.measured_s
    DATA.mkdir(exist_ok=True)
    frame.to_csv(DATA / f"latency_{family}_cpu_{statistic}.csv", index=False)
    result = {
        "family": family, "what": what, "entries": len(table),
        "interpolated": table.info["interpolated"],
        "layers": len(space_layers(family, space, shape, N_CLASSES)),
        "build_s": build_seconds, "overhead_us": table.overhead * 1e6,
        "median_ape": frame.ape.median(), "p90_ape": frame.ape.quantile(0.9),
        "median_ape_sum": frame.ape_sum_only.median(),
        "p90_ape_sum": frame.ape_sum_only.quantile(0.9),
        "tau": kendalltau(frame.estimate_s, frame.measured_s)[0],
        "tau_flops": kendalltau(frame.flops, frame.measured_s)[0],
        "latency_range_ms": (frame.measured_s.min() * 1e3, frame.measured_s.max() * 1e3),
        "load": (load_before, os.getloadavg()[0]),
        "total_s": time.perf_counter() - started,
    }
    print(f"  {family}: median APE {result['median_ape']:.1%}, p90 {result['p90_ape']:.1%} "
          f"(sum only {result['median_ape_sum']:.1%} / {result['p90_ape_sum']:.1%}), "
          f"tau {result['tau']:.3f}, load {result['load'][0]:.1f}-{result['load'][1]:.1f}",
          flush=True)
    return result


def report(results: list[dict], n: int, batch_size: int, statistic: str) -> str:
    rows = [[r["family"], r["what"], f"{r['entries']}"
             + (f" (+{r['interpolated']} interp.)" if r["interpolated"] else ""),
             f"{r['build_s']:.0f}", f"{r['overhead_us']:.1f}",
             f"{r['latency_range_ms'][0]:.3f}-{r['latency_range_ms'][1]:.3f}",
             f"**{r['median_ape']:.1%}**", f"{r['p90_ape']:.1%}",
             f"{r['median_ape_sum']:.1%} / {r['p90_ape_sum']:.1%}",
             f"{r['tau']:.3f} ({r['tau_flops']:.3f})",
             f"{r['load'][0]:.1f} / {r['load'][1]:.1f}"] for r in results]
    table = markdown_table(
        ["family", "space", "table entries", "build s", "overhead us",
         "measured ms (min-max)", "median APE", "p90 APE", "sum only: median / p90",
         "Kendall tau (FLOPs')", "load before / after"], rows)
    return (
        f"{SECTION}\n\n`python benchmarks/bench_latency.py` on {today()}. Machine: "
        f"{cpu_model()} (2 cores, shared with other jobs), pinned to one core, torch "
        f"{torch.__version__} with 1 thread, batch size {batch_size}, float32, eval mode "
        f"under `torch.inference_mode`. Load = 1-minute load average of the machine "
        f"when the family started and ended.\n\n"
        f"Each family's table times every layer its preset space can build "
        f"(`steerage profile-latency`), each entry the {statistic} of 11 loops of >= 1 ms "
        f"after a warm-up; its overhead term (time of a whole model outside its layers: "
        f"containers, flatten) is the median gap on 5 models drawn with seed 0. Then {n} "
        f"architectures drawn with seed 1 are built and timed end to end the same way. "
        f"APE = |estimate - measured| / measured; target: median <= 10 %. 'Sum only' is "
        f"the plain ChamNet sum of entries without the overhead term. Kendall tau "
        f"compares the estimate's ranking with the measured one (in brackets: FLOPs' "
        f"ranking, for reference). Rows per architecture: "
        f"`benchmarks/data/latency_<family>_cpu_{statistic}.csv`.\n\n{table}\n\n"
        f"The error depends on a quiet machine more than on the table: on 2026-11-29, "
        f"with other benchmarks running beside it, the same script gave a median APE of "
        f"20.4 % (ffnn) and 16.0 % (lenet), and seven of its one-layer FFNNs measured "
        f"22-38 us there against 14-17 us when timed again alone. Profile on a machine "
        f"at rest.\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-load", type=float, default=2.5)
    parser.add_argument("--wait", type=float, default=30.0, help="minutes to wait per family")
    parser.add_argument("--statistic", choices=("median", "min"), default="median")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    torch.set_num_threads(1)
    results = []
    for family in args.families:
        wait_for_quiet(args.max_load, args.wait)
        results.append(run_family(family, args.n, args.batch_size, args.statistic))
    text = report(results, args.n, args.batch_size, args.statistic)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
