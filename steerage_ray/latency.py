"""Measured inference latency of a config, ChamNet-style: a per-layer lookup table.

ChamNet (Dai et al., CVPR 2019; the paper's Section 3.2) predicts a network's latency
on a device by summing an operator latency table measured on that device. Here:

1. :func:`space_layers` lists every layer (type and size) that the configs of a search
   space can produce, from the layer list of ``complexity_estimate.config_layers`` (the
   one place that knows how a family's shapes flow);
2. :func:`profile_latency` times each of them on a device (CPU with ``perf_counter``,
   CUDA with events and synchronisation; warm-up, then the median of repeats) plus a
   measured per-forward overhead (the time of a whole model outside its layers: module
   containers, ``flatten``), into a :class:`LatencyTable` that is saved as JSON;
3. :func:`estimate_latency` sums the table over a config's layers;
4. :func:`measure_latency` times a built model end to end the same way (validation).

What is timed is one forward pass of a batch of ``batch_size`` examples in eval mode
under ``torch.inference_mode``, the weights on the device, input already there. The
config's preprocessing (dimensionality reduction, image downsampling) is not part of
the model and not timed; ``quant_bits`` does not change the float model.

Layers whose first size axis takes too many values (the FFNN input width, one per DR
ratio on wide datasets) are measured at ``max_points`` of those values, evenly spread
and including both ends, and interpolated linearly in between (``linear(784,300)`` from
``linear(760,300)`` and ``linear(801,300)``); the table says which layers were sampled.

No Ray here.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from steerage_ray.checks import integer
from steerage_ray.complexity_estimate import (LAYER_DIMS, Layer, config_layers,
                                              model_input_shape)
from steerage_ray.data.reduction import reduced_dimension
from steerage_ray.families import check_family
from steerage_ray.models import BasicBlock, Bottleneck, build_model
from steerage_ray.models.resnet import conv3x3
from steerage_ray.space import SearchSpace
from steerage_ray.space.dimensions import Categorical, Choice, Float
from steerage_ray.training import torch_threads

__all__ = ["DEVICES", "LatencyTable", "busy_warning", "check_device", "estimate_latency",
           "layer_module", "load_table", "measure_latency", "profile_latency",
           "space_layers", "table_filename"]

DEVICES = ("cpu", "cuda")
FORMAT = "steerage-latency-table"
VERSION = 1
#: Default timing: a repeat lasts at least this long (seconds), the median of this many.
MIN_REPEAT_SECONDS = 1e-3
REPEATS = 11
#: Per entry: the median of the repeats (typical latency), or their minimum (the least
#: disturbed one, steadier on a machine shared with other jobs).
STATISTICS = ("median", "min")
#: Default largest number of values measured along a layer's first size axis.
MAX_POINTS = 64
#: Default number of sampled models that measure the per-forward overhead.
CALIBRATION_MODELS = 5
_RESNET_STRIDES = (1, 2, 2, 2)
_BOTTLENECK_FROM_DEPTH = 50


# --- the table ------------------------------------------------------------------------

class LatencyTable:
    """Measured seconds per forward pass of one batch, per layer, on one device.

    ``entries`` maps ``Layer.key`` (e.g. ``"linear(40,300)"``) to seconds; ``overhead``
    is added once per network; ``info`` records how and where it was measured (device
    name, torch version, threads, host, input shape, repeats, build seconds, ...).
    Build one with :func:`profile_latency`, read one with :func:`load_table`.
    """

    def __init__(self, family: str, device: str, batch_size: int,
                 entries: Mapping[str, float], overhead: float = 0.0,
                 info: Mapping[str, Any] | None = None) -> None:
        self.family = check_family(family)
        self.device = _check_device_name(device)
        self.batch_size = integer(batch_size, "batch_size", 1)
        self.entries = {str(key): float(value) for key, value in entries.items()}
        bad = [k for k, v in self.entries.items() if not math.isfinite(v) or v < 0]
        if bad:
            raise ValueError(f"latency table entry {bad[0]!r} must be a non-negative "
                             f"number of seconds, got {self.entries[bad[0]]!r}")
        self.overhead = float(overhead)
        self.info = dict(info or {})
        self._lines: dict[tuple, tuple[list[float], list[float]]] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (f"LatencyTable({self.family!r}, {self.device!r}, batch_size="
                f"{self.batch_size}, {len(self)} entries, overhead={self.overhead:.3g} s)")

    def layer_latency(self, layer: Layer) -> float:
        """Seconds of ``layer``: its entry, or interpolated linearly along its first size
        axis between the nearest measured values (same op, same other sizes)."""
        value = self.entries.get(layer.key)
        if value is not None:
            return value
        line = self._line_index().get((layer.op, tuple(layer.dims[1:])))
        first = layer.dims[0] if layer.dims else None
        if line is not None and isinstance(first, int):
            xs, ys = line
            if xs[0] <= first <= xs[-1]:
                i = bisect_left(xs, first)
                weight = (first - xs[i - 1]) / (xs[i] - xs[i - 1])
                return ys[i - 1] + weight * (ys[i] - ys[i - 1])
        raise ValueError(
            f"layer {layer.key} is not in the {self.family} latency table "
            f"({self.info.get('source', 'measured')} for input shape "
            f"{tuple(self.info.get('input_shape', ()))}); profile the search space that "
            "produces it (steerage profile-latency)")

    def _line_index(self) -> dict[tuple, tuple[list[float], list[float]]]:
        if self._lines is None:
            lines: dict[tuple, list[tuple[int, float]]] = {}
            for key, seconds in self.entries.items():
                op, dims = _parse_key(key)
                if dims and isinstance(dims[0], int):
                    lines.setdefault((op, dims[1:]), []).append((dims[0], seconds))
            self._lines = {k: ([x for x, _ in sorted(v)], [y for _, y in sorted(v)])
                           for k, v in lines.items()}
        return self._lines

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "family": self.family,
                "device": self.device, "batch_size": self.batch_size,
                "overhead_s": self.overhead, "info": self.info,
                "entries": dict(sorted(self.entries.items()))}

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (atomically: a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=1))
        temporary.replace(path)
        return path


def load_table(path: str | Path) -> LatencyTable:
    """A table written by :meth:`LatencyTable.save`; a file that is not one raises
    ValueError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read latency table {path}: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a steerage latency table")
    if data.get("version") != VERSION:
        raise ValueError(f"latency table {path} has version {data.get('version')!r}; "
                         f"this steerage-ray reads version {VERSION}")
    try:
        return LatencyTable(data["family"], data["device"], data["batch_size"],
                            data["entries"], data["overhead_s"], data.get("info"))
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"latency table {path} is malformed: {error}") from None


def table_filename(family: str, device: str, batch_size: int) -> str:
    """The file name of a table in an experiment directory, e.g.
    ``latency-ffnn-cpu-b1.json``."""
    check_family(family)
    return f"latency-{family}-{_check_device_name(device)}-b{integer(batch_size, 'batch_size', 1)}.json"


# --- estimating -----------------------------------------------------------------------

def estimate_latency(table: LatencyTable, family: str, config: Mapping[str, object],
                     input_shape: Sequence[int], n_classes: int) -> float:
    """Predicted seconds per forward pass of a batch of ``table.batch_size`` examples of
    ``models.build_model(family, config, ...)`` on the table's device.

    Arguments as for ``complexity_estimate.estimate_complexity``: ``input_shape`` is the
    original dataset's example shape (the config's own DR or downsampling is applied).
    The estimate is ``table.overhead`` plus the table's entry for each of the config's
    layers (``config_layers``). A layer the table does not cover raises ValueError.
    """
    if family != table.family:
        raise ValueError(f"latency table is for family {table.family!r}, not {family!r}")
    layers = config_layers(family, config, input_shape, n_classes)
    return table.overhead + sum(table.layer_latency(layer) for layer in layers)


# --- what a space can produce ---------------------------------------------------------

def space_layers(family: str, space: SearchSpace, input_shape: Sequence[int],
                 n_classes: int) -> list[Layer]:
    """Every distinct layer (``op`` and ``dims``) a config of ``space`` can build.

    Enumerated per network position from the values of each config key (a superset of
    what is reachable when keys interact beyond what the family's builder implies,
    e.g. ResNet bottleneck blocks are listed for every stage width once some config of
    the space reaches depth 50). ``params``/``flops`` are left 0.
    """
    check_family(family)
    integer(n_classes, "n_classes", 1)
    model_input_shape(family, {}, input_shape)  # validates the shape
    values = _SpaceValues(space)
    layers = _SPACE_LAYERS[family](values, tuple(input_shape), n_classes)
    unique = {(layer.op, layer.dims): layer for layer in layers}
    return [unique[k] for k in sorted(unique, key=lambda k: (k[0], tuple(map(str, k[1]))))]


class _SpaceValues:
    """The values each config key can take in a space (constants included)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def has(self, name: str) -> bool:
        return name in self.space.names or name in self.space.constants

    def can_be_none(self, name: str) -> bool:
        return not self.has(name) or (name in self.space.names
                                      and self.space[name].condition is not None)

    def get(self, name: str, family: str) -> list:
        if name in self.space.constants:
            return [self.space.constants[name]]
        if name not in self.space.names:
            raise ValueError(f"the {family} search space has no key {name!r}")
        dim = self.space[name]
        if isinstance(dim, Categorical):
            return list(dim.choices)
        if isinstance(dim, Choice):
            return list(dim.values)
        if dim.n_values is None:
            raise ValueError(f"{name} is continuous; a latency table needs a grid")
        return [dim.decode(dim.code_at(i)) for i in range(dim.n_values)]

    def ints(self, name: str, family: str) -> list[int]:
        return sorted({int(v) for v in self.get(name, family)})

    def float_range(self, name: str) -> tuple[float, float] | None:
        dim = self.space[name] if name in self.space.names else None
        if isinstance(dim, Float) and dim.n_values is None:
            return dim.low, dim.high
        return None


def _ffnn_space_layers(values: _SpaceValues, shape: tuple[int, ...],
                       n_classes: int) -> list[Layer]:
    depths = values.ints("num_layers", "ffnn")
    widths = [values.ints(f"neurons_{i}", "ffnn") for i in range(1, max(depths) + 1)]
    layers = [Layer("relu", (w,)) for column in widths for w in column]
    for a, b in _pairs(_ffnn_input_widths(values, shape[0]), widths[0]):
        layers.append(Layer("linear", (a, b)))
    for i in range(1, max(depths)):
        layers += [Layer("linear", (a, b)) for a, b in _pairs(widths[i - 1], widths[i])]
    for depth in depths:
        layers += [Layer("linear", (a, n_classes)) for a in widths[depth - 1]]
    return layers


def _ffnn_input_widths(values: _SpaceValues, n_features: int) -> list[int]:
    """Input widths after the config's DR: ``reduced_dimension(d, r)`` for each ratio."""
    if not values.has("dr_method"):
        return [n_features]
    widths = {n_features} if values.can_be_none("dr_method") else set()
    bounds = values.float_range("dr_ratio")
    if bounds is not None:  # a continuous ratio: every width between the extremes
        low, high = (reduced_dimension(n_features, r) for r in (bounds[1], bounds[0]))
        return sorted(widths | set(range(max(low, 1), high + 1)))
    for ratio in values.get("dr_ratio", "ffnn"):
        try:
            widths.add(reduced_dimension(n_features, float(ratio)))
        except ValueError:  # leaves no feature: no config with it can be prepared
            continue
    return sorted(widths)


def _lenet_space_layers(values: _SpaceValues, shape: tuple[int, ...],
                        n_classes: int) -> list[Layer]:
    channels = shape[0]
    sides = (values.ints("image_size", "lenet") if values.has("image_size")
             else [(shape[1], shape[2])])
    kernels = values.ints("kernel_size", "lenet")
    conv1, conv2 = values.ints("conv1_filters", "lenet"), values.ints("conv2_filters", "lenet")
    pool1, pool2 = values.get("pool1", "lenet"), values.get("pool2", "lenet")
    fc = [values.ints(f"fc{i}", "lenet") for i in (1, 2, 3)]
    layers = []
    for side in sides:
        height, width = side if isinstance(side, tuple) else (side, side)
        for kernel in kernels:
            pad = kernel // 2
            h1, w1 = (height + 2 * pad - kernel + 1) // 2, (width + 2 * pad - kernel + 1) // 2
            h2, w2 = (h1 + 2 * pad - kernel + 1) // 2, (w1 + 2 * pad - kernel + 1) // 2
            if min(h2, w2) < 1:
                continue  # too small for this kernel: no such network
            layers += [Layer("conv_stage", (channels, f, kernel, height, width, p))
                       for f in conv1 for p in pool1]
            layers += [Layer("conv_stage", (f1, f2, kernel, h1, w1, p))
                       for f1 in conv1 for f2 in conv2 for p in pool2]
            flat = [f2 * h2 * w2 for f2 in conv2]
            layers += _mlp_layers([flat, *fc], n_classes)
    return layers


def _resnet_space_layers(values: _SpaceValues, shape: tuple[int, ...],
                         n_classes: int) -> list[Layer]:
    channels = shape[0]
    sides = (values.ints("image_size", "resnet") if values.has("image_size")
             else [(shape[1], shape[2])])
    blocks = [values.ints(f"blocks_{i}", "resnet") for i in range(1, 5)]
    stem = values.ints("conv1_filters", "resnet")
    planes = [values.ints(f"conv{i}_filters", "resnet") for i in range(2, 6)]
    pools = values.get("pooling", "resnet")
    fc_layers = values.ints("fc_layers", "resnet")
    min_depth = 2 + 2 * sum(min(b) for b in blocks)
    max_depth = 2 + 2 * sum(max(b) for b in blocks)
    kinds = ([("basic_block", 1)] if min_depth < _BOTTLENECK_FROM_DEPTH else []) + (
        [("bottleneck_block", 4)] if max_depth >= _BOTTLENECK_FROM_DEPTH else [])
    layers = []
    for side in sides:
        height, width = side if isinstance(side, tuple) else (side, side)
        layers += [Layer("stem", (channels, s, height, width)) for s in stem]
        for op, expansion in kinds:
            inputs, h, w = stem, height, width
            for stage_planes, counts, stride in zip(planes, blocks, _RESNET_STRIDES):
                layers += [Layer(op, (c, p, stride, h, w)) for c in inputs for p in stage_planes]
                h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
                if max(counts) >= 2:
                    layers += [Layer(op, (p * expansion, p, 1, h, w)) for p in stage_planes]
                inputs = [p * expansion for p in stage_planes]
            layers += [Layer("global_pool", (c, h, w, pool)) for c in inputs for pool in pools]
            for count in fc_layers:
                if count == 2:
                    for c, p in zip(inputs, planes[-1]):
                        layers += [Layer("linear", (c, p)), Layer("relu", (p,)),
                                   Layer("linear", (p, n_classes))]
                else:
                    layers += [Layer("linear", (c, n_classes)) for c in inputs]
    return layers


def _mlp_layers(columns: Sequence[Sequence[int]], n_classes: int) -> list[Layer]:
    """Linear layers between consecutive width columns, ReLU after each hidden one, and
    the output layer from the last column."""
    layers = []
    for before, after in zip(columns[:-1], columns[1:]):
        layers += [Layer("linear", (a, b)) for a, b in _pairs(before, after)]
        layers += [Layer("relu", (b,)) for b in after]
    return layers + [Layer("linear", (a, n_classes)) for a in columns[-1]]


def _pairs(first: Iterable[int], second: Iterable[int]) -> list[tuple[int, int]]:
    return [(a, b) for a in first for b in second]


_SPACE_LAYERS = {"ffnn": _ffnn_space_layers, "lenet": _lenet_space_layers,
                 "resnet": _resnet_space_layers}


# --- timing ---------------------------------------------------------------------------

def layer_module(layer: Layer) -> nn.Module:
    """A freshly initialised module computing ``layer`` as the family's builder does."""
    op, dims = layer.op, layer.dims
    if op == "linear":
        return nn.Linear(dims[0], dims[1])
    if op == "relu":
        return nn.ReLU()
    if op == "conv_stage":  # as models.lenet.LeNet builds each stage ('same' padding)
        in_channels, out_channels, kernel, _, _, pool = dims
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
                             nn.ReLU(), nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
    if op == "stem":  # as models.resnet.ResNet.stem
        return nn.Sequential(conv3x3(dims[0], dims[1]), nn.BatchNorm2d(dims[1]), nn.ReLU())
    if op == "basic_block":
        return BasicBlock(dims[0], dims[1], dims[2])
    if op == "bottleneck_block":
        return Bottleneck(dims[0], dims[1], dims[2])
    if op == "global_pool":
        return nn.AdaptiveMaxPool2d(1) if dims[3] == "max" else nn.AdaptiveAvgPool2d(1)
    raise ValueError(f"unknown layer op {op!r}; known: {sorted(LAYER_DIMS)}")


def _layer_input_shape(layer: Layer) -> tuple[int, ...]:
    if layer.op in ("linear", "relu"):
        return (layer.dims[0],)
    if layer.op == "global_pool":
        return tuple(layer.dims[:3])
    if layer.op == "conv_stage":
        return (layer.dims[0], layer.dims[3], layer.dims[4])
    return (layer.dims[0], layer.dims[-2], layer.dims[-1])


class _Timer:
    """Seconds per call of ``module(x)``: warm-up, then the median (or minimum) of
    ``repeats`` timed loops of ``number`` calls each, ``number`` chosen so a loop lasts at least
    ``min_repeat_s``. CUDA is timed with events after synchronising."""

    def __init__(self, device: torch.device, repeats: int, min_repeat_s: float,
                 statistic: str) -> None:
        self.device = device
        self.repeats = repeats
        self.min_repeat_s = min_repeat_s
        self.statistic = statistic

    def _loop(self, module: nn.Module, x: torch.Tensor, number: int) -> float:
        if self.device.type == "cuda":
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            torch.cuda.synchronize(self.device)
            start.record()
            for _ in range(number):
                module(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        begin = time.perf_counter()
        for _ in range(number):
            module(x)
        return time.perf_counter() - begin

    def __call__(self, module: nn.Module, input_shape: Sequence[int],
                 batch_size: int) -> float:
        module = module.to(self.device).eval()
        x = torch.randn((batch_size, *input_shape), device=self.device)
        with torch.inference_mode():
            self._loop(module, x, 1)  # first call: allocations, lazy initialisation
            once = max(self._loop(module, x, 1), 1e-7)
            number = max(1, math.ceil(self.min_repeat_s / once))
            self._loop(module, x, number)  # warm-up at the timed pace
            times = [self._loop(module, x, number) / number for _ in range(self.repeats)]
        return min(times) if self.statistic == "min" else statistics.median(times)


def measure_latency(model: nn.Module, input_shape: Sequence[int], *, device: str = "cpu",
                    batch_size: int = 1, threads: int | None = None,
                    repeats: int = REPEATS, min_repeat_s: float = MIN_REPEAT_SECONDS,
                    statistic: str = "median") -> float:
    """Measured seconds per forward pass of a batch of ``batch_size`` examples of
    ``input_shape`` (the shape the model takes) through ``model``, end to end, timed
    like each entry of a latency table. ``model`` itself is left where it is (a copy
    is moved to a CUDA device) and its training flag is not changed."""
    timer = _timer(device, repeats, min_repeat_s, statistic)
    integer(batch_size, "batch_size", 1)
    model = copy.deepcopy(model)
    with torch_threads(threads):
        return timer(model, tuple(input_shape), batch_size)


def profile_latency(family: str, space: SearchSpace, input_shape: Sequence[int],
                    n_classes: int, *, device: str = "cpu", batch_size: int = 1,
                    threads: int | None = None, repeats: int = REPEATS,
                    min_repeat_s: float = MIN_REPEAT_SECONDS, statistic: str = "median",
                    max_points: int = MAX_POINTS,
                    calibration: int = CALIBRATION_MODELS, seed: int = 0,
                    on_layer: Callable[[int, int], None] | None = None) -> LatencyTable:
    """Time every layer of :func:`space_layers` on ``device`` into a :class:`LatencyTable`.

    ``input_shape``/``n_classes``: the original dataset's example shape and classes, as
    for ``estimate_complexity``. ``threads``: torch's intra-op threads while timing (None:
    as set). Each entry is the median (``statistic="min"``: the minimum) of ``repeats``
    loops of at least ``min_repeat_s`` seconds after a warm-up loop. Layers whose first size axis has more than
    ``max_points`` values are measured at ``max_points`` of them and interpolated.
    ``calibration`` models drawn from ``space`` (``seed``) are timed end to end; the
    median of their measured minus summed latency is the table's ``overhead``
    (0 models: no overhead term). ``on_layer(done, total)`` reports progress.
    """
    check_family(family)
    timer = _timer(device, repeats, min_repeat_s, statistic)
    integer(batch_size, "batch_size", 1)
    integer(max_points, "max_points", 2)
    integer(calibration, "calibration", 0)
    if threads is not None:
        integer(threads, "threads", 1)
    layers = space_layers(family, space, input_shape, n_classes)
    measured, sampled = _sample_first_axis(layers, max_points)
    started = time.perf_counter()
    load_before = _load_average()
    entries = {}
    with torch_threads(threads):
        torch.manual_seed(seed)
        for done, layer in enumerate(measured, 1):
            entries[layer.key] = timer(layer_module(layer), _layer_input_shape(layer),
                                       batch_size)
            if on_layer is not None:
                on_layer(done, len(measured))
        table = LatencyTable(family, device, batch_size, entries)
        gaps = []
        for config in space.random(calibration, np.random.default_rng(seed)):
            shape = model_input_shape(family, config, input_shape)
            model = build_model(family, config, shape, n_classes, seed=seed)
            gaps.append(timer(model, shape, batch_size)
                        - estimate_latency(table, family, config, input_shape, n_classes))
        used_threads = torch.get_num_threads()
    table.overhead = statistics.median(gaps) if gaps else 0.0
    table.info = {
        "device_name": _device_name(timer.device), "torch": torch.__version__,
        "threads": used_threads, "host": platform.node(), "python": platform.python_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input_shape": list(input_shape), "n_classes": n_classes,
        "statistic": statistic, "repeats": repeats, "min_repeat_s": min_repeat_s,
        "layers": len(layers), "measured": len(measured), "interpolated": sampled,
        "max_points": max_points, "calibration_models": calibration,
        "calibration_gaps_s": gaps, "seed": seed,
        "build_seconds": round(time.perf_counter() - started, 3),
        "load_average": [load_before, _load_average()],
    }
    return table


def busy_warning(table: LatencyTable) -> str | None:
    """A warning when the CPU was busy with other work while a CPU table was timed (the
    1-minute load average above the table's own threads by more than one), else None.
    A busy core slows sub-millisecond forward passes unevenly: on this project's
    2-core machine, tables timed beside other benchmarks missed end-to-end latency
    by a median of 16-20 % against 3-4 % at rest."""
    loads = [load for load in table.info.get("load_average") or () if load is not None]
    if table.device != "cpu" or not loads:
        return None
    busiest, threads = max(loads), table.info.get("threads", 1)
    if busiest <= threads + 1:
        return None
    return (f"the machine was busy while the table was timed (load average {busiest:.1f} "
            f"with {threads} timing thread(s)): its latencies are "
            "inflated unevenly; profile again when nothing else runs")


def _load_average() -> float | None:
    """The 1-minute load average, where the platform has one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _sample_first_axis(layers: list[Layer], max_points: int) -> tuple[list[Layer], int]:
    """The layers to measure: per (op, other sizes), at most ``max_points`` values of
    the first size axis (evenly spread over the sorted values, both ends kept); returns
    them and how many layers are left to interpolation."""
    lines: dict[tuple, list[Layer]] = {}
    for layer in layers:
        if layer.dims and isinstance(layer.dims[0], int):
            lines.setdefault((layer.op, layer.dims[1:]), []).append(layer)
    skipped = set()
    for line in lines.values():
        if len(line) > max_points:
            line.sort(key=lambda layer: layer.dims[0])
            keep = {round(i * (len(line) - 1) / (max_points - 1)) for i in range(max_points)}
            skipped.update(layer.key for i, layer in enumerate(line) if i not in keep)
    return [layer for layer in layers if layer.key not in skipped], len(skipped)


def check_device(device: Any) -> str:
    """``device`` if it is ``"cpu"``, or ``"cuda"`` and torch sees a CUDA device."""
    _check_device_name(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' is not available on this machine (torch sees no "
                         "CUDA device); use device 'cpu'")
    return device


def _timer(device: str, repeats: int, min_repeat_s: float, statistic: str) -> _Timer:
    check_device(device)
    integer(repeats, "repeats", 1)
    if not (isinstance(min_repeat_s, (int, float)) and 0 <= min_repeat_s < 10):
        raise ValueError(f"min_repeat_s must be a number of seconds in [0, 10), "
                         f"got {min_repeat_s!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    return _Timer(torch.device(device), repeats, float(min_repeat_s), statistic)


def _check_device_name(device: Any) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        if found:
            return found.group(1).strip()
    return platform.processor() or platform.machine()


def _parse_key(key: str) -> tuple[str, tuple]:
    found = re.fullmatch(r"([a-z_]+)\((.*)\)", key)
    if found is None:
        raise ValueError(f"malformed latency table key {key!r}")
    dims = tuple(int(part) if re.fullmatch(r"-?\d+", part) else part
                 for part in found.group(2).split(",") if part)
    return found.group(1), dims
