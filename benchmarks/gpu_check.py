"""The CUDA path, proven on a GPU: search, local search and export with models and data on it.

Run it on a machine with a CUDA GPU (a few minutes); it needs no download (the images
are scikit-learn's bundled digits, upsampled to 28x28 and jittered in-process):

    python benchmarks/gpu_check.py            # asserts, prints, writes RESULTS.md
    python benchmarks/gpu_check.py --cpu-dry-run   # plumbing only, on a CPU machine

What it checks (each an assertion; the first failure exits non-zero):

1. **placement**: two trials of a Tune experiment with ``gpus_per_trial=0.5`` run at the
   same time on the *same* GPU id, and each trains with its model parameters and its
   dataset tensors on CUDA (the allocated CUDA memory during training exceeds the
   dataset's size);
2. **global search**: ``global_search(..., family="lenet", gpus_per_trial=0.5)`` trains
   every trial on the GPU (``on_gpu``);
3. **local search**: ``run_local_search`` places its LeNet schemes (SCANN C and NeST)
   on GPUs and trains them on CUDA (each task's ``device``);
4. **export**: the best local-search model exports to TorchScript and runs on CUDA.

It prints the training throughput (images/s) of one LeNet trial on the GPU against the
same training on the CPU. ``--cpu-dry-run`` runs everything on the CPU with fake GPU ids
to check the script itself; it proves nothing about GPUs and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from _results import cpu_model, markdown_table, today, write_section

HEADING = "## GPU check (benchmarks/gpu_check.py)"


def synthetic_images(n_train: int, seed: int = 0):
    """Digits as 1x28x28 images: upsampled 8x8 digits, shifted by up to 2 pixels, plus
    noise; 10 classes. Made in-process, so nothing is downloaded."""
    from sklearn.datasets import load_digits

    from steerage_ray.data import Dataset

    digits = load_digits()
    rng = np.random.default_rng(seed)
    base = digits.images.astype(np.float32) / 16.0
    upsampled = base.repeat(3, axis=1).repeat(3, axis=2)  # 24x24

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        index = rng.integers(0, len(base), n)
        images = np.zeros((n, 1, 28, 28), dtype=np.float32)
        shifts = rng.integers(0, 5, (n, 2))
        for row, (i, (dy, dx)) in enumerate(zip(index, shifts)):
            images[row, 0, dy:dy + 24, dx:dx + 24] = upsampled[i]
        images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
        return images, digits.target[index].astype(np.int64)

    X_train, y_train = make(n_train)
    X_val, y_val = make(n_train // 5)
    X_test, y_test = make(n_train // 5)
    return Dataset("digits28", X_train, y_train, X_val, y_val, X_test, y_test, 10, "image")


LENET = {"image_filter": None, "kernel_size": 5, "conv1_filters": 6, "pool1": "max",
         "conv2_filters": 16, "pool2": "max", "fc1": 120, "fc2": 84, "fc3": 50,
         "quant_bits": 8, "image_size": 28}


def train_lenet(data, device: str, epochs: int = 2) -> dict:
    """Train LeNet on ``device``; return where it ran and its images/s."""
    from steerage_ray.models import build_model
    from steerage_ray.training import settings_for, train_model

    model = build_model("lenet", LENET, data.input_shape, data.n_classes, seed=0)
    peak = {"allocated": 0}

    def watch(epoch) -> None:
        if device.startswith("cuda"):
            peak["allocated"] = max(peak["allocated"], torch.cuda.memory_allocated())

    settings = settings_for("mnist", "lenet", epochs=epochs, device=device, batch_size=128)
    started = time.perf_counter()
    result = train_model(model, data, settings, on_epoch=watch)
    seconds = time.perf_counter() - started
    return {"images_per_s": epochs * len(data.y_train) / seconds,
            "param_device": str(next(model.parameters()).device),
            "cuda_allocated": peak["allocated"], "data_bytes": data.X_train.nbytes,
            "val_acc": result.best_val_acc}


def placement_trainable(config: dict, data=None) -> None:
    """A Tune trial that trains LeNet on the device Ray gave it and says where it ran."""
    import ray
    from ray import tune

    from steerage_ray.training import select_device

    started = time.time()
    device = str(select_device("auto"))
    measured = train_lenet(data, device, epochs=config["epochs"])
    tune.report({"score": measured["val_acc"], "start": started, "end": time.time(),
                 "gpu_ids": ",".join(map(str, ray.get_gpu_ids())), "device": device,
                 **measured})


def check_placement(data, storage: str, dry_run: bool) -> list[dict]:
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(placement_trainable, data=data),
                                    {"cpu": 1, "gpu": 0.5})
    grid = tune.Tuner(
        trainable, param_space={"epochs": 3, "seed": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=storage, name="placement", verbose=0),
    ).fit()
    rows = [dict(result.metrics) for result in grid]
    assert len(rows) == 2 and grid.num_errors == 0, grid.errors
    first, second = sorted(rows, key=lambda row: row["start"])
    assert second["start"] < first["end"], "the two half-GPU trials did not overlap"
    assert first["gpu_ids"] == second["gpu_ids"] and first["gpu_ids"], \
        f"the trials did not share one GPU: {first['gpu_ids']} vs {second['gpu_ids']}"
    if not dry_run:
        for row in rows:
            assert row["device"].startswith("cuda") and row["param_device"].startswith("cuda")
            assert row["cuda_allocated"] >= row["data_bytes"], \
                "less CUDA memory in use than the dataset's size: data not on the GPU"
    return rows


def check_global_search(data, storage: str, dry_run: bool):
    from steerage_ray.global_search import global_search

    result = global_search(data, "lenet", budget=6, epochs=2, final_epochs=2,
                           gpus_per_trial=0.5, cpus_per_trial=1, storage_path=storage,
                           name="search", verbose=0, seed=0)
    trials = result.trials
    assert (trials["status"] == "completed").all() and len(trials) == 6
    if not dry_run:
        assert trials["on_gpu"].all(), "a global-search trial trained on the CPU"
    return result


def check_local_search_and_export(data, result, dry_run: bool) -> dict:
    from steerage_ray.data import prepare_for_config
    from steerage_ray.local_search import Candidate, run_local_search

    config = {k: v for k, v in result.best_observed_config.items()
              if k in result.searcher.space.names or k == "image_size"}
    prepared = prepare_for_config(data, config)
    found = run_local_search(
        Candidate("lenet", config, result.best_observed_state_dict), prepared,
        schemes=("C", "nest"), iterations=2, num_gpus_per_task=1)
    assert not found.failures, found.failures
    if not dry_run:
        assert (found.tasks["device"].str.startswith("cuda")).all(), found.tasks
    exported = found.export()
    device = "cpu" if dry_run else "cuda"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        exported.torchscript.save(path)
        module = torch.jit.load(path, map_location=device)
        logits = module(torch.zeros(4, *prepared.input_shape, device=device))
    assert logits.shape == (4, 10) and logits.device.type == device
    return {"schemes": ", ".join(f"{r.scheme}: {r.device}" for r in found.tasks.itertuples()),
            "pareto_points": len(found.pareto)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="no CUDA: run the plumbing on the CPU with fake GPUs")
    parser.add_argument("--images", type=int, default=20000, help="training images")
    args = parser.parse_args()
    dry_run = args.cpu_dry_run
    if not dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a GPU machine, or pass "
              "--cpu-dry-run to check the script's plumbing", file=sys.stderr)
        return 2
    import ray

    gpus = 1 if dry_run else torch.cuda.device_count()
    ray.init(address="local", num_gpus=gpus, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    data = synthetic_images(2000 if dry_run else args.images)
    device_name = "CPU dry run" if dry_run else torch.cuda.get_device_name(0)
    cpu = train_lenet(data, "cpu", epochs=1)
    gpu = None if dry_run else train_lenet(data, "cuda", epochs=3)
    with tempfile.TemporaryDirectory() as storage:
        placement = check_placement(data, storage, dry_run)
        result = check_global_search(data, storage, dry_run)
        local = check_local_search_and_export(data, result, dry_run)
    ray.shutdown()
    rows = [["LeNet-5 training, one process, CPU", f"{cpu['images_per_s']:,.0f}"]]
    if gpu is not None:
        rows.append([f"LeNet-5 training, one process, {device_name}",
                     f"{gpu['images_per_s']:,.0f}"])
    rows += [[f"Tune trial {i} (0.5 GPU, GPU id {row['gpu_ids']}, {row['device']})",
              f"{row['images_per_s']:,.0f}"] for i, row in enumerate(placement)]
    text = (f"{HEADING}\n\n`python benchmarks/gpu_check.py`, {today()}, device: "
            f"{device_name}; host CPU {cpu_model()}. All checks passed: two half-GPU "
            f"trials shared GPU {placement[0]['gpu_ids']} at the same time with model and "
            f"data on CUDA; every global-search trial trained on the GPU; local-search "
            f"tasks ran on {local['schemes']}; the exported TorchScript model ran on "
            f"CUDA.\n\nTraining throughput ({len(data.y_train):,} images 1x28x28, batch "
            f"128):\n\n" + markdown_table(["run", "images/s"], rows) + "\n")
    if dry_run:
        print("gpu_check --cpu-dry-run: every step ran (placement of two half-GPU trials on "
              "one fake GPU, global search, local search on "
              f"{local['schemes']}, export); nothing about CUDA was shown or written.")
        return 0
    print(text)
    write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
