"""``steerage export``: pick a model of an experiment directory and write it in one file
format. Choosing is here; compacting and writing the formats is the exporter's,
``local_search.export``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from steerage_ray.data import prepare_for_config
from steerage_ray.experiment import Experiment
from steerage_ray.local_search.export import FILE_FORMATS, export_model
from steerage_ray.models import build_model, quantize_model
from steerage_ray.pareto import choose
from steerage_ray.precision import config_precision, fewest_bits
from steerage_ray.run.directory import ExperimentDir
from steerage_ray.run.front import front_model
from steerage_ray.run.inputs import load_experiment_data


def export_experiment_model(directory: str | Path, *, fmt: str = "torchscript",
                            which: str = "best", out: str | Path | None = None,
                            front: int | None = None, quantized: bool = False) -> Path:
    """Export a local-search Pareto model or the global-search winner (``global``) as
    TorchScript, a state_dict or ONNX; return the file written (default:
    ``export/<model>.<format suffix>`` in the directory).

    Pareto models: ``best`` (or ``most_accurate``) and ``compact``, the two GS+LS rows
    of the summary (``compact`` with the experiment's ``local_search.select_tolerance``),
    ``smallest``, or a row index of ``local_search/pareto.csv``.

    ``front``: instead, row ``front`` of the global-search front (``pareto_front.csv``,
    several objectives) with the weights its trial trained (``front_<i>``). Nothing is
    trained here: a member whose weights were not kept is refused.

    ``quantized``: the model with its weights at its precision (``quant_bits``: the
    searched one, or the one chosen after training, as the summary's ``bits``), in the
    same format; the label gains ``_q<bits>``."""
    if fmt not in FILE_FORMATS:
        raise ValueError(f"format must be one of {tuple(FILE_FORMATS)}, got {fmt!r}")
    if front is not None and which != "best":
        raise ValueError(f"give --front (a global-search front row) or --which (a "
                         f"local-search model), not both; got --which {which}")
    run_dir = ExperimentDir(directory)
    experiment = run_dir.experiment()
    if front is not None:
        module, input_shape, bits, label = _front_member(run_dir, experiment, front)
    else:
        module, input_shape, bits, label = _model_to_export(run_dir, experiment, which)
    if quantized:
        module, label = quantize_model(module, bits), f"{label}_q{bits}"
    exported = export_model(module, input_shape, quant_bits=bits, onnx=fmt == "onnx")
    return exported.write(fmt, out or run_dir.file("export", f"{label}.{FILE_FORMATS[fmt]}"))


def _model_to_export(run_dir: ExperimentDir, experiment: Experiment,
                     which: str) -> tuple[nn.Module, tuple[int, ...], int, str]:
    if which == "global":
        return _global_winner(run_dir, experiment)
    path = run_dir.file("local_search", "models.pt")
    pareto_path = run_dir.file("local_search", "pareto.csv")
    if not path.is_file() or not pareto_path.is_file():
        raise ValueError(f"{run_dir.path} has no local-search results; use --which global "
                         f"or run `steerage local-search {run_dir.path}`")
    saved = torch.load(path, weights_only=False)
    pareto = pd.read_csv(pareto_path)
    named = "most_accurate" if which == "best" else which.replace("-", "_")
    if named in ("most_accurate", "compact", "smallest"):
        row = choose(pareto, named, experiment.local_search["select_tolerance"] / 100)
    elif which.isdigit() and int(which) < len(pareto):
        row = pareto.iloc[int(which)]
    else:
        raise ValueError(f"--which must be best, most_accurate, compact, smallest, global or "
                         f"a Pareto row index 0..{len(pareto) - 1}, got {which!r}")
    key = (row["scheme"], int(row["step"]))
    label = f"scheme_{row['scheme']}_step_{int(row['step'])}"
    # each point's precision; a directory written before points had their own, its one
    bits = row["quant_bits"] if "quant_bits" in row else saved["quant_bits"]
    return saved["models"][key], tuple(saved["input_shape"]), int(bits), label


def _global_winner(run_dir: ExperimentDir,
                   experiment: Experiment) -> tuple[nn.Module, tuple[int, ...], int, str]:
    winner = run_dir.read_json("global_winner.json")
    state_path = run_dir.file("winner_state.pt")
    if winner is None or not state_path.is_file():
        raise ValueError(f"{run_dir.path} has no trained global-search winner to "
                         f"export yet")
    return _trained(experiment, winner["config"],
                    torch.load(state_path, weights_only=True), "global_winner")


def _front_member(run_dir: ExperimentDir, experiment: Experiment,
                  index: int) -> tuple[nn.Module, tuple[int, ...], int, str]:
    config, state = front_model(run_dir, index)
    if state is None:
        raise ValueError(f"front member {index} has no stored weights (the global search "
                         f"kept no checkpoints); start local search from it with "
                         f"`steerage local-search {run_dir.path} --ls-from {index}` and "
                         f"export a local-search model with --which")
    return _trained(experiment, config, state, f"front_{index}")


def _trained(experiment: Experiment, config: dict, state: dict,
             label: str) -> tuple[nn.Module, tuple[int, ...], int, str]:
    """A global-search architecture with its trained weights, its precision (the
    config's ``quant_bits``, else chosen as its trial chose it) and its export label."""
    data = prepare_for_config(load_experiment_data(experiment), config,
                              seed=experiment.seed)
    model = build_model(experiment.family, config, data.input_shape, data.n_classes)
    model.load_state_dict(state)
    bits = config_precision(config)
    if not isinstance(bits, int):
        bits = fewest_bits(model, data.X_val, data.y_val, choices=bits)
    return model, data.input_shape, bits, label
