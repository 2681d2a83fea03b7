"""STEERAGE end to end: baseline -> global search -> local search -> report.

An experiment directory holds everything a run produces, written as each phase ends,
so an interrupted run resumes where it stopped (``resume_experiment``) and reports can
be rebuilt without Ray (``rebuild_report``)::

    experiment.yaml        the validated experiment as run
    progress.json          phases done and their wall-clock seconds
    baseline.json          the paper's baseline model trained on the same data
    tune/global_search/    the Ray Tune experiment (Tuner.restore resumes it)
    trials.csv, .parquet   every trained architecture (phase, round, scores, config)
    predictor_rounds.csv   the predictor's held-out Kendall tau per round, refit/EES time
    global_winner.json     the EES winner as trained in the final round
    winner_state.pt        its trained weights (the start of local search)
    local_search/          pareto.csv, history.csv, failures.json, models.pt
    summary.csv, summary.md, plots/*.png
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
import yaml
from ray import tune

from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.data import Dataset, prepare_for_config
from steerage_ray.experiment import Experiment, parse_experiment
from steerage_ray.models import (
    build_ffnn,
    build_lenet,
    count_flops,
    count_params,
    lenet5_baseline,
    resnet18_cifar,
)
from steerage_ray.report import format_summary, most_accurate, summary_table, write_plots
from steerage_ray.space import SearchSpace, get_preset, load_space_file
from steerage_ray.training import TrainSettings, settings_for, train_model

PHASES = ("baseline", "global_search", "local_search", "report")
TUNE_NAME = "global_search"


def _say(message: str) -> None:
    """A short progress line for the person watching."""
    print(f"[steerage] {message}", flush=True)


class TrialProgress(tune.Callback):
    """One line per finished trial with the best accuracy so far (instead of Tune's
    per-trial tables, which ``--verbose`` brings back)."""

    def __init__(self) -> None:
        self.finished, self.best = 0, float("-inf")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        accuracy = result.get("val_acc", float("nan"))
        self.finished += 1
        self.best = max(self.best, accuracy)
        _say(f"trial {self.finished} done: val_acc {accuracy:.4f}, params "
             f"{result.get('params', 0):,}, {result.get('epoch', '?')} epochs "
             f"(best so far {self.best:.4f})")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.finished += 1
        _say(f"trial {self.finished} failed: {trial.trial_id} (its error.txt is under "
             f"tune/{TUNE_NAME}); the search goes on without it")


# --------------------------------------------------------------------------- inputs


def with_dataset_path(experiment: Experiment, path: str | None,
                      label_column: str | None) -> Experiment:
    """Point a file-based experiment (csv/npz/image folder) or a torchvision root at
    ``path``; a label column may be given for CSV files."""
    if path is None and label_column is None:
        return experiment
    dataset = dict(experiment.dataset)
    if path is not None:
        source = next(key for key in ("csv", "npz", "image_folder", "name") if key in dataset)
        if source == "name":
            dataset["root"] = path
        else:
            dataset[source] = path
    if label_column is not None:
        if "csv" not in dataset:
            raise ValueError("--label-column applies to CSV datasets only; experiment "
                             f"{experiment.name!r} uses {sorted(dataset)}")
        dataset["label_column"] = label_column
    return parse_experiment({**experiment.to_dict(), "dataset": dataset},
                            source=experiment.source)


def load_experiment_data(experiment: Experiment) -> Dataset:
    """The experiment's dataset (paths expanded); errors name the dataset field."""
    from steerage_ray.trainables import load_dataset_spec

    spec = dict(experiment.dataset)
    for key in ("root", "csv", "npz", "image_folder"):
        if isinstance(spec.get(key), str):
            spec[key] = os.path.expanduser(spec[key])
    if "name" in spec:
        spec.setdefault("seed", experiment.seed)
    return load_dataset_spec(spec)


def experiment_space(experiment: Experiment, data: Dataset) -> SearchSpace:
    """The search space: a preset sized for the data, or a user's YAML space file."""
    options = dict(experiment.space)
    if "file" in options:
        return load_space_file(options["file"])
    preset = options.pop("preset")
    if preset == "ffnn":
        given = options.get("n_features")
        if given is not None and given != data.n_features:
            raise ValueError(f"space.n_features is {given} but dataset "
                             f"{data.name!r} has {data.n_features} features; fix or "
                             f"remove space.n_features")
        options["n_features"] = data.n_features
    if preset == "lenet" and data.kind == "image":
        options.setdefault("image_size", data.input_shape[-1])
    return get_preset(preset, **options)


def training_settings(experiment: Experiment, data: Dataset,
                      epochs: int | None = None) -> TrainSettings:
    """``settings_for`` the data, overridden by the experiment's training section."""
    overrides = {**_training_overrides(experiment),
                 "epochs": epochs or experiment.training["epochs"]}
    return settings_for(data.name, experiment.family, seed=experiment.seed, **overrides)


def _training_overrides(experiment: Experiment) -> dict:
    """The training settings the experiment fixes, except the epochs (phase-specific)."""
    from steerage_ray.trainables import TRAINING_KEYS

    return {k: v for k, v in experiment.training.items()
            if k in TRAINING_KEYS and k != "epochs" and v is not None}


def resolve_resources(experiment: Experiment) -> Experiment:
    """The experiment with per-trial GPUs decided for the running Ray cluster.

    ``gpus_per_trial`` left unset means one GPU per trial when any node has a GPU (one
    trial per GPU on a multi-GPU machine), none otherwise. Per-trial resources no node
    can provide are refused with a message naming the field.
    """
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if experiment.resources["gpus_per_trial"] is None:
        experiment = replace(experiment, resources={
            **experiment.resources, "gpus_per_trial": 1 if gpus >= 1 else 0})
    wanted = experiment.resources
    if wanted["gpus_per_trial"] > gpus:
        raise ValueError(f"resources.gpus_per_trial={wanted['gpus_per_trial']} but the "
                         f"largest node of this Ray cluster has {gpus:g} GPU(s); lower "
                         f"--gpus-per-trial or add GPU nodes")
    if wanted["cpus_per_trial"] > cpus:
        raise ValueError(f"resources.cpus_per_trial={wanted['cpus_per_trial']} but the "
                         f"largest node of this Ray cluster has {cpus:g} CPU(s); lower "
                         f"--cpus-per-trial")
    return experiment


def _start_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address)
    else:
        # "local": a new embedded Ray, never an unrelated one already running here
        ray.init(address="local", include_dashboard=False, configure_logging=False,
                 log_to_driver=False)


# --------------------------------------------------------------------------- directory


class ExperimentDir:
    """Reads and writes the files of one experiment directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def exists(self) -> bool:
        return self.file("experiment.yaml").is_file()

    def require_new(self) -> None:
        """Refuse to start over an existing experiment (nothing is ever overwritten)."""
        if self.exists():
            raise ValueError(f"{self.path} already holds an experiment; continue it with "
                             f"`steerage resume {self.path}` or choose another --output")

    def create(self, experiment: Experiment) -> None:
        self.require_new()
        self.path.mkdir(parents=True, exist_ok=True)
        self.file("experiment.yaml").write_text(
            yaml.safe_dump(experiment.to_dict(), sort_keys=False))
        self.write_json("progress.json", {"done": [], "seconds": {}})

    def experiment(self) -> Experiment:
        if not self.exists():
            raise ValueError(f"{self.path} is not an experiment directory (no "
                             f"experiment.yaml); start one with `steerage search`")
        data = yaml.safe_load(self.file("experiment.yaml").read_text())
        return parse_experiment(data, source=str(self.file("experiment.yaml")))

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_json(self, name: str, value: Any) -> Path:
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(value, indent=2, default=_json_default))
        temporary.replace(path)
        return path

    def done(self, phase: str) -> bool:
        return phase in (self.read_json("progress.json") or {}).get("done", [])

    def mark_done(self, phase: str, seconds: float) -> None:
        progress = self.read_json("progress.json") or {"done": [], "seconds": {}}
        if phase not in progress["done"]:
            progress["done"].append(phase)
        progress["seconds"][phase] = round(seconds, 2)
        self.write_json("progress.json", progress)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


# --------------------------------------------------------------------------- phases


def run_baseline(experiment: Experiment, data: Dataset) -> dict:
    """Train the paper's baseline (MLP / LeNet-5 / ResNet-18) with the final budget."""
    model, description = _baseline_model(experiment, data)
    settings = training_settings(experiment, data, experiment.training["final_epochs"])
    result = train_model(model, data, settings)
    return {"model": description, "val_acc": result.best_val_acc,
            "test_acc": result.test_acc, "params": count_params(model),
            "flops": count_flops(model, data.input_shape), "epochs": result.epochs_run,
            "seconds": round(result.seconds, 2)}


def _baseline_model(experiment: Experiment, data: Dataset) -> tuple[torch.nn.Module, str]:
    spec = experiment.baseline
    torch.manual_seed(experiment.seed)
    if experiment.family == "ffnn":
        if "hidden_sizes" in spec:
            hidden = [int(h) for h in spec["hidden_sizes"]]
        elif "hidden_sizes_per_feature" in spec:
            hidden = [max(1, int(m * data.n_features))
                      for m in spec["hidden_sizes_per_feature"]]
        else:
            raise ValueError("baseline needs hidden_sizes (e.g. [300, 100]) or "
                             "hidden_sizes_per_feature (e.g. [2, 1]) for an ffnn experiment")
        return (build_ffnn(data.n_features, hidden, data.n_classes),
                f"MLP {data.n_features}-{'-'.join(map(str, hidden))}-{data.n_classes}")
    channels, size = data.input_shape[0], data.input_shape[-1]
    if experiment.family == "lenet":
        if size == 28:
            return lenet5_baseline(data.n_classes, channels, size), "LeNet-5"
        return (build_lenet(channels, size, data.n_classes),
                f"LeNet-5 layout (6/16 filters, 5x5, FC 120-84) for {size}x{size} inputs")
    return resnet18_cifar(data.n_classes, channels), "ResNet-18 (CIFAR)"


def run_global_search(experiment: Experiment, data: Dataset, run_dir: ExperimentDir,
                      storage: str | None, verbose: int = 0):
    """Algorithms 1 + 2 on Ray Tune; resumes the Tune experiment if one was started."""
    from steerage_ray.global_search import global_search, resume_global_search

    resources = experiment.resources
    storage_path = storage or str(run_dir.file("tune"))
    tune_path = f"{storage_path.rstrip('/')}/{TUNE_NAME}"
    if tune.Tuner.can_restore(tune_path):
        _say(f"resuming the Tune experiment at {tune_path}")
        return resume_global_search(tune_path, data,
                                    cpus_per_trial=resources["cpus_per_trial"],
                                    gpus_per_trial=resources["gpus_per_trial"])
    search = {k: v for k, v in experiment.search.items()
              if v is not None and k not in ("max_params", "max_flops")}
    if experiment.search["max_params"] or experiment.search["max_flops"]:
        search["constraint"] = ResourceConstraint(
            experiment.family, data.input_shape, data.n_classes,
            max_params=experiment.search["max_params"],
            max_flops=experiment.search["max_flops"])
    training = _training_overrides(experiment)
    return global_search(
        data, experiment.family, space=experiment_space(experiment, data),
        epochs=experiment.training["epochs"],
        final_epochs=experiment.training["final_epochs"], training=training,
        cpus_per_trial=resources["cpus_per_trial"],
        gpus_per_trial=resources["gpus_per_trial"],
        max_concurrent_trials=resources["max_concurrent_trials"],
        storage_path=storage_path, name=TUNE_NAME,
        seed=experiment.seed, verbose=verbose,
        callbacks=None if verbose else [TrialProgress()], **search)


def save_global_search(result, run_dir: ExperimentDir) -> dict:
    """Write trials, predictor rounds, the winner and its weights; return the winner.

    The winner is the architecture with the best validation accuracy among everything
    global search trained: normally the EES winner of the final round (trained with the
    final epochs), or an architecture of an earlier round when it validated better.
    Both are recorded; only validation accuracy chooses, never test accuracy.
    """
    trials = _flat_trials(result.trials)
    trials.to_csv(run_dir.file("trials.csv"), index=False)
    trials.to_parquet(run_dir.file("trials.parquet"), index=False)
    result.round_scores.to_csv(run_dir.file("predictor_rounds.csv"), index=False)
    if result.best_observed_config is None:
        raise RuntimeError("global search finished without a successfully trained "
                           "architecture; see trials.csv and the trials' error.txt")
    phase = str(trials.loc[trials["val_acc"].idxmax(), "phase"])  # the same argmax
    winner = {"config": _plain(result.best_observed_config),
              "result": _plain(result.best_observed_result), "phase": phase,
              "ees_winner": None if result.best_config is None else {
                  "config": _plain(result.best_config),
                  "result": _plain(result.best_result)}}
    run_dir.write_json("global_winner.json", winner)
    if result.best_observed_state_dict is not None:
        torch.save(result.best_observed_state_dict, run_dir.file("winner_state.pt"))
    _say(f"global-search winner ({phase} round): validation accuracy "
         f"{winner['result']['val_acc']:.4f}, test accuracy "
         f"{winner['result']['test_acc']:.4f}, {winner['result']['params']:,} parameters")
    return winner


def _flat_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Observations (already one ``config/<key>`` column per key) with the metric under
    its own name, ``val_acc``."""
    from steerage_ray.trainables import METRIC

    return trials.reset_index(drop=True).rename(columns={"metric": METRIC})


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def run_local_search(experiment: Experiment, data: Dataset, run_dir: ExperimentDir,
                     schemes: list[str] | None = None, iterations: int | None = None):
    """SCANN / NeST on the global-search winner, schemes as parallel Ray tasks."""
    from steerage_ray.local_search import Candidate, run

    winner = run_dir.read_json("global_winner.json")
    if winner is None:
        raise ValueError(f"{run_dir.path} has no global-search winner yet; run "
                         f"`steerage resume {run_dir.path}` first")
    state_path = run_dir.file("winner_state.pt")
    state = torch.load(state_path, weights_only=True) if state_path.is_file() else None
    config = winner["config"]
    prepared = prepare_for_config(data, config, seed=experiment.seed)
    options = experiment.local_search
    epochs = options["epochs"] or experiment.training["epochs"]
    candidate = Candidate(family=experiment.family, config=config, state_dict=state)
    return run(candidate, prepared, schemes=schemes or options["schemes"],
               iterations=iterations or options["iterations"],
               settings=training_settings(experiment, data, epochs),
               seed=experiment.seed, growth_ratio=options["growth_ratio"],
               pruning_ratio=options["pruning_ratio"],
               num_gpus_per_task=None if experiment.resources["gpus_per_trial"] else 0)


def save_local_search(result, run_dir: ExperimentDir) -> None:
    folder = run_dir.file("local_search")
    folder.mkdir(exist_ok=True)
    result.pareto.to_csv(folder / "pareto.csv", index=False)
    histories = [h.assign(scheme=s) for s, h in result.histories.items()]
    if histories:
        pd.concat(histories, ignore_index=True).to_csv(folder / "history.csv", index=False)
    run_dir.write_json("local_search/failures.json", result.failures)
    models = {(row.scheme, int(row.step)): result.model(row.scheme, int(row.step)).cpu()
              for row in result.pareto.itertuples()}
    torch.save({"models": models, "input_shape": result.input_shape,
                "quant_bits": result.quant_bits}, folder / "models.pt")


def write_report(run_dir: ExperimentDir) -> str:
    """Summary table (CSV + Markdown) and plots from the files written so far."""
    trials = pd.read_csv(run_dir.file("trials.csv"))
    pareto_path = run_dir.file("local_search", "pareto.csv")
    pareto = pd.read_csv(pareto_path) if pareto_path.is_file() else None
    winner = run_dir.read_json("global_winner.json") or {}
    table = summary_table(run_dir.read_json("baseline.json"), winner.get("result"), pareto)
    table.to_csv(run_dir.file("summary.csv"), index=False)
    text = format_summary(table)
    run_dir.file("summary.md").write_text(
        f"# {run_dir.experiment().name}\n\n```\n{text}\n```\n")
    write_plots(run_dir.path, trials, pareto)
    return text


# --------------------------------------------------------------------------- commands


def run_experiment(experiment: Experiment, output: str | Path, *, address: str | None = None,
                   storage: str | None = None, verbose: int = 0) -> ExperimentDir:
    """Run every phase of ``experiment`` into a new experiment directory."""
    run_dir = ExperimentDir(output)
    run_dir.require_new()  # before any work, not only when the directory is written
    data = load_experiment_data(experiment)
    experiment_space(experiment, data)  # a space that does not fit fails before Ray
    _start_ray(address)
    resolved = resolve_resources(experiment)
    run_dir.create(experiment)  # as written: "auto" GPUs are decided again on resume
    if storage:
        run_dir.write_json("storage.json", {"storage": storage})
    return _run_phases(resolved, data, run_dir, storage, verbose)


def resume_experiment(directory: str | Path, *, address: str | None = None,
                      verbose: int = 0) -> ExperimentDir:
    """Continue an experiment directory from the first phase not yet done."""
    run_dir = ExperimentDir(directory)
    experiment = run_dir.experiment()
    data = load_experiment_data(experiment)
    _start_ray(address)
    experiment = resolve_resources(experiment)
    storage = (run_dir.read_json("storage.json") or {}).get("storage")
    return _run_phases(experiment, data, run_dir, storage, verbose)


def _run_phases(experiment: Experiment, data: Dataset, run_dir: ExperimentDir,
                storage: str | None, verbose: int) -> ExperimentDir:
    _say(f"experiment {experiment.name!r} on {data.name} ({data.kind}, "
         f"{data.n_features} features, {data.n_classes} classes) -> {run_dir.path}")
    steps: list[tuple[str, Callable[[], None]]] = [
        ("baseline", lambda: run_dir.write_json("baseline.json",
                                                run_baseline(experiment, data))),
        ("global_search", lambda: save_global_search(
            run_global_search(experiment, data, run_dir, storage, verbose), run_dir)),
    ]
    if experiment.local_search["enabled"]:
        steps.append(("local_search", lambda: save_local_search(
            run_local_search(experiment, data, run_dir), run_dir)))
    for number, (phase, step) in enumerate(steps, start=1):
        if run_dir.done(phase):
            _say(f"phase {number}/{len(steps)}: {phase} already done")
            continue
        _say(f"phase {number}/{len(steps)}: {phase.replace('_', ' ')}")
        started = time.perf_counter()
        step()
        run_dir.mark_done(phase, time.perf_counter() - started)
    summary = write_report(run_dir)
    _say("summary (test accuracy, non-zero parameters, FLOPs per example):\n" + summary)
    _say(f"wrote {run_dir.path}: summary.md, trials.csv, plots/, local_search/")
    return run_dir


def rerun_local_search(directory: str | Path, *, address: str | None = None,
                       schemes: list[str] | None = None,
                       iterations: int | None = None) -> ExperimentDir:
    """Run local search again on a finished global search (other schemes/iterations)."""
    run_dir = ExperimentDir(directory)
    experiment = run_dir.experiment()
    if not run_dir.done("global_search"):
        raise ValueError(f"{run_dir.path}: global search has not finished; run "
                         f"`steerage resume {run_dir.path}` first")
    data = load_experiment_data(experiment)
    _start_ray(address)
    experiment = resolve_resources(experiment)
    started = time.perf_counter()
    save_local_search(run_local_search(experiment, data, run_dir, schemes, iterations),
                      run_dir)
    run_dir.mark_done("local_search", time.perf_counter() - started)
    _say("summary:\n" + write_report(run_dir))
    return run_dir


def rebuild_report(directory: str | Path) -> str:
    """Rebuild summary and plots of an experiment directory; return the summary text."""
    run_dir = ExperimentDir(directory)
    run_dir.experiment()
    if not run_dir.file("trials.csv").is_file():
        raise ValueError(f"{run_dir.path}: no trials.csv yet; global search has not "
                         f"finished (run `steerage resume {run_dir.path}`)")
    return write_report(run_dir)


def export_model(directory: str | Path, *, fmt: str = "torchscript", which: str = "best",
                 out: str | Path | None = None) -> Path:
    """Export a local-search Pareto model (``best``, ``smallest`` or a row index) or the
    global-search winner (``global``) as TorchScript, a state_dict or ONNX."""
    from steerage_ray.local_search.export import export_model as export

    run_dir = ExperimentDir(directory)
    experiment = run_dir.experiment()
    module, input_shape, bits, label = _model_to_export(run_dir, experiment, which)
    exported = export(module, input_shape, quant_bits=bits, onnx=fmt == "onnx")
    out = Path(out) if out else run_dir.file("export", f"{label}.{_SUFFIX[fmt]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        exported.torchscript.save(str(out))
    elif fmt == "state_dict":
        torch.save(exported.state_dict, out)
    else:
        out.write_bytes(exported.onnx)
    return out


_SUFFIX = {"torchscript": "torchscript.pt", "state_dict": "state_dict.pt", "onnx": "onnx"}


def _model_to_export(run_dir: ExperimentDir, experiment: Experiment, which: str):
    if which == "global":
        from steerage_ray.models import build_model

        winner = run_dir.read_json("global_winner.json")
        state_path = run_dir.file("winner_state.pt")
        if winner is None or not state_path.is_file():
            raise ValueError(f"{run_dir.path} has no trained global-search winner to "
                             f"export yet")
        data = prepare_for_config(load_experiment_data(experiment), winner["config"],
                                  seed=experiment.seed)
        model = build_model(experiment.family, winner["config"], data.input_shape,
                            data.n_classes)
        model.load_state_dict(torch.load(state_path, weights_only=True))
        bits = int(winner["config"].get("quant_bits") or 32)
        return model, data.input_shape, bits, "global_winner"
    path = run_dir.file("local_search", "models.pt")
    pareto_path = run_dir.file("local_search", "pareto.csv")
    if not path.is_file() or not pareto_path.is_file():
        raise ValueError(f"{run_dir.path} has no local-search results; use --which global "
                         f"or run `steerage local-search {run_dir.path}`")
    saved = torch.load(path, weights_only=False)
    pareto = pd.read_csv(pareto_path)
    if which == "best":
        row = most_accurate(pareto)
    elif which == "smallest":
        row = pareto.sort_values(["params", "val_acc"], ascending=[True, False]).iloc[0]
    elif which.isdigit() and int(which) < len(pareto):
        row = pareto.iloc[int(which)]
    else:
        raise ValueError(f"--which must be best, smallest, global or a Pareto row index "
                         f"0..{len(pareto) - 1}, got {which!r}")
    key = (row["scheme"], int(row["step"]))
    label = f"scheme_{row['scheme']}_step_{int(row['step'])}"
    return saved["models"][key], tuple(saved["input_shape"]), saved["quant_bits"], label
