"""``steerage profile-latency``: a latency table for an experiment's search space.

The table (``steerage_ray.latency``) is written into the experiment directory as
``latency-<family>-<device>-b<batch>.json``, where a search reads it back with
``latency.load_table``. The space, input shape and number of classes come from the
experiment (its dataset is loaded for the shape), or, without an experiment, from the
family's preset space for ``input_shape``/``n_classes`` (defaults: MNIST-1D's 40
features for ``ffnn``, 1x28x28 for ``lenet``, 3x32x32 for ``resnet``; 10 classes).
Every argument is checked before anything is timed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from steerage_ray import latency
from steerage_ray.checks import integer
from steerage_ray.experiment import load_experiment
from steerage_ray.families import check_family
from steerage_ray.run.directory import ExperimentDir
from steerage_ray.run.inputs import experiment_space, load_experiment_data
from steerage_ray.space import get_preset

#: Input shape and classes profiled when no experiment is given.
DEFAULT_INPUTS = {"ffnn": ((40,), 10), "lenet": ((1, 28, 28), 10), "resnet": ((3, 32, 32), 10)}


def profile_experiment_latency(
    *, family: str | None = None, device: str = "cpu", batch_size: int = 1,
    experiment: str | Path | None = None, output: str | Path | None = None,
    threads: int | None = None, input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
) -> tuple[Path, latency.LatencyTable]:
    """Profile a family's space on ``device`` and write the table; returns its path.

    ``experiment``: an experiment directory (holding ``experiment.yaml``), a bundled
    experiment name or a YAML file; the table goes into that experiment's directory
    (``steerage_results/<name>`` unless ``output`` says otherwise). Without one,
    ``family`` and ``output`` are required.
    """
    latency.check_device(device)
    integer(batch_size, "batch_size", 1)
    if threads is not None:
        integer(threads, "threads", 1)
    if n_classes is not None:
        integer(n_classes, "n_classes", 1)
    if experiment is not None:
        directory, loaded = _experiment(experiment, output)
        if family not in (None, loaded.family):
            raise ValueError(f"experiment {loaded.name!r} searches family "
                             f"{loaded.family!r}, not {family!r}")
        family = loaded.family
        data = load_experiment_data(loaded)
        space = experiment_space(loaded, data)
        shape = tuple(input_shape) if input_shape is not None else data.input_shape
        classes = n_classes if n_classes is not None else data.n_classes
    else:
        if family is None or output is None:
            raise ValueError("give --experiment (the table goes into its directory), or "
                             "--family and -o DIR")
        check_family(family)
        directory = Path(output)
        default_shape, default_classes = DEFAULT_INPUTS[family]
        shape = tuple(input_shape) if input_shape is not None else default_shape
        classes = n_classes if n_classes is not None else default_classes
        space = _preset(family, shape)
    path = directory / latency.table_filename(family, device, batch_size)
    latency.space_layers(family, space, shape, classes)  # checks the space and shape
    table = latency.profile_latency(family, space, shape, classes, device=device,
                                    batch_size=batch_size, threads=threads)
    table.info["source"] = str(experiment) if experiment is not None else "preset"
    return table.save(path), table


def summary_line(path: Path, table: latency.LatencyTable) -> str:
    """One line saying what was written."""
    info = table.info
    return (f"wrote {path}: {info['measured']} layers timed"
            + (f" ({info['interpolated']} more interpolated)" if info["interpolated"] else "")
            + f", {table.family} on {table.device} ({info['device_name']}, "
            f"{info['threads']} thread{'s' if info['threads'] != 1 else ''}), batch "
            f"{table.batch_size}, overhead {table.overhead * 1e6:.1f} us per forward, built "
            f"in {info['build_seconds']:.1f} s")


def _experiment(experiment: str | Path, output: str | Path | None):
    folder = ExperimentDir(experiment)
    if folder.exists():
        return (Path(output) if output is not None else folder.path), folder.experiment()
    loaded = load_experiment(experiment)
    return (Path(output) if output is not None
            else Path("steerage_results") / loaded.name), loaded


def _preset(family: str, shape: tuple[int, ...]):
    if family == "ffnn":
        if len(shape) != 1:
            raise ValueError(f"input shape for family 'ffnn' must be (d,), got {shape}")
        return get_preset("ffnn", n_features=integer(shape[0], "input features", 2))
    if len(shape) != 3:
        raise ValueError(f"input shape for family {family!r} must be (C, H, W), got {shape}")
    return get_preset("lenet", image_size=shape[-1]) if family == "lenet" else get_preset(family)
