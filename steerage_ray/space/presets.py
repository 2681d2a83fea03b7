"""The paper's search spaces (Tables 2, 6 and 8 of Hassantabar, Dai and Jha).

Config keys are the contract with ``steerage_ray.data`` and ``steerage_ray.models``
(docs/ARCHITECTURE.md). Where the paper leaves a gap we fill it here and say so.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from steerage_ray.checks import is_integer
from steerage_ray.data.reduction import DR_METHODS
from steerage_ray.space.dimensions import Categorical, Choice, Condition, Float, Integer
from steerage_ray.space.search_space import SearchSpace

QUANT_BITS = (4, 8, 16, 32)  # the quant_bits values; models.quantize_model supports these
MAX_LAYERS = 6
MAX_DR_RATIO = 20.0
DR_RATIO_STEP = 0.1
# Fewest features a DR method may keep when capping the ratio for narrow datasets:
# with 3, Letter (16 features) gets ratios up to 6.3, next to the paper's "up to 6x".
MIN_KEPT_FEATURES = 3
FC_STEP = 5
# Table 6's fully-connected widths per image side: (low, high) for fc1, fc2, fc3.
LENET_FC_RANGES = {
    14: ((135, 180), (60, 120), (40, 85)),
    21: ((375, 500), (100, 220), (50, 120)),
    28: ((540, 720), (100, 250), (50, 150)),
}
_MIN_FC_WIDTH = 10  # scaled FC ranges (our extension) stay at least this wide
RESNET_STAGES = 4


def max_dr_ratio(n_features: int) -> float:
    """Largest DR ratio on the 0.1 grid (at most 20) that keeps enough features.

    The paper narrows Table 2 for datasets with few features (Letter, 16 features:
    ratios up to 6x). We make that a rule: ``round(n_features / ratio)`` (the data
    module's k) must be at least ``min(MIN_KEPT_FEATURES, n_features)``.
    """
    if not is_integer(n_features) or n_features < 2:
        raise ValueError(f"n_features must be an integer >= 2, got {n_features!r}")
    kept = min(MIN_KEPT_FEATURES, int(n_features))
    steps = round((MAX_DR_RATIO - 1.0) / DR_RATIO_STEP)
    ratios = (round(1.0 + k * DR_RATIO_STEP, 1) for k in range(steps, -1, -1))
    return next(r for r in ratios if round(n_features / r) >= kept)  # 1.0 always qualifies


def ffnn_space(n_features: int | None = None, optional_reduction: bool = False) -> SearchSpace:
    """Table 2, feed-forward networks: layers, widths, DR method and ratio, quantization.

    ``neurons_i`` is active iff ``num_layers >= i``; ``dr_method`` indexes the 11
    methods of Sec. 4.2.1. Given ``n_features``, the DR ratio's upper bound is
    :func:`max_dr_ratio` instead of 20.

    Table 2 gives ranges, not scales; ours: the DR methods are unordered, so
    ``dr_method`` is a category (an index 1-11 as value), and the ratio is a
    compression factor, so it is sampled and modelled on a log scale (1 to 2 keeps
    half the features or more, as 5 to 10 keeps a fifth to a tenth). On a linear scale
    up to 15.9 (MNIST-1D's 40 features) 87 % of uniform draws keep under a third of
    the features (60 % on the log scale), while the most accurate networks global
    search found on the bundled datasets used ratios of 1.2 to 5.

    Table 2 reduces every input: even at ratio 1 each DR method transforms the
    features. ``optional_reduction=True`` (our extension) adds ``reduce_features``
    (0 or 1) before them: ``dr_method`` and ``dr_ratio`` are active only when it is 1,
    so a config with 0 trains on the raw features, as a hand-made baseline does.
    """
    if not isinstance(optional_reduction, bool):
        raise ValueError(f"optional_reduction must be true or false, got "
                         f"{optional_reduction!r}")
    high = MAX_DR_RATIO if n_features is None else max_dr_ratio(n_features)
    neurons = [Integer(f"neurons_{i}", 50, 600, step=25,
                       condition=None if i == 1 else Condition("num_layers", i))
               for i in range(1, MAX_LAYERS + 1)]
    switch = [Integer("reduce_features", 0, 1)] if optional_reduction else []
    reduced = Condition("reduce_features", 1) if optional_reduction else None
    return SearchSpace([
        Integer("num_layers", 1, MAX_LAYERS),
        *neurons,
        *switch,
        Categorical("dr_method", tuple(range(1, len(DR_METHODS) + 1)), condition=reduced),
        Float("dr_ratio", 1.0, high, step=DR_RATIO_STEP, log=True, condition=reduced),
        Choice("quant_bits", QUANT_BITS),
    ])


def lenet_fc_ranges(image_size: int) -> tuple[tuple[int, int], ...]:
    """Table 6's (low, high) widths of fc1, fc2, fc3 for square images of this side.

    Sides 14, 21 and 28 are the paper's. Any other side (8 for sklearn digits, 32, ...)
    is our extension: each bound grows with the side as it does in Table 6 from 14 to
    28, ``bound_14 * (side / 14) ** k`` with ``k = log2(bound_28 / bound_14)``, rounded
    to multiples of 5, at least 5 and at least 10 wide. fc1, which takes the flattened
    feature maps, grows with the pixel count (k = 2); fc2 and fc3 grow far less
    (k = 0.3-1.1). An earlier rule scaled all three by the pixel ratio, which at 8x8
    gave fc2 10-20 and fc3 5-15: a layer narrower than the 10 classes, where a LeNet
    with fc 45-10-5 trained to 56 % validation accuracy on digits and one with
    45-40-35 (this rule's narrowest) to 97 % (benchmarks/RESULTS.md, "LeNet FC ranges").
    """
    if not is_integer(image_size) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if image_size in LENET_FC_RANGES:
        return LENET_FC_RANGES[image_size]
    ranges = []
    for at_14, at_28 in zip(LENET_FC_RANGES[14], LENET_FC_RANGES[28]):
        low, high = (bound * (image_size / 14) ** math.log2(larger / bound)
                     for bound, larger in zip(at_14, at_28))
        low = max(FC_STEP, FC_STEP * round(low / FC_STEP))
        high = max(low + _MIN_FC_WIDTH, FC_STEP * round(high / FC_STEP))
        ranges.append((low, high))
    return tuple(ranges)


def lenet_space(image_size: int = 28) -> SearchSpace:
    """Table 6, LeNet-5: image filter, kernel, filters, pooling, FC widths, quantization.

    The table gives no step for the fully-connected widths; we use 5. ``image_size``
    is a constant of the space (the paper runs one search per image size).
    """
    fc = lenet_fc_ranges(image_size)
    return SearchSpace([
        Integer("image_filter", 1, 6),
        Choice("kernel_size", (3, 5)),
        Integer("conv1_filters", 5, 10),
        Categorical("pool1", ("max", "avg")),
        Integer("conv2_filters", 15, 20),
        Categorical("pool2", ("max", "avg")),
        *(Integer(f"fc{i}", low, high, step=FC_STEP) for i, (low, high) in enumerate(fc, 1)),
        Choice("quant_bits", QUANT_BITS),
    ], constants={"image_size": int(image_size)})


def resnet_space(fixed_depth: bool = False) -> SearchSpace:
    """Table 8, ResNet on CIFAR-10: input, blocks per stage, filters, pooling, FC, bits.

    Filter ranges are the table's (e.g. Conv1 56-98 step 8, whose grid ends at 96).
    ``fixed_depth=True`` is the paper's fixed ResNet-18 variant: ``blocks_1..4`` become
    constants 2 and depth leaves the search.
    """
    if not isinstance(fixed_depth, bool):
        raise ValueError(f"fixed_depth must be True or False, got {fixed_depth!r}")
    blocks = [f"blocks_{i}" for i in range(1, RESNET_STAGES + 1)]
    return SearchSpace([
        Integer("image_filter", 1, 6),
        Choice("image_size", (24, 32)),
        *([] if fixed_depth else [Integer(name, 2, 6) for name in blocks]),
        Integer("conv1_filters", 56, 98, step=8),
        Integer("conv2_filters", 56, 98, step=8),
        Integer("conv3_filters", 112, 196, step=16),
        Integer("conv4_filters", 224, 392, step=32),
        Integer("conv5_filters", 448, 784, step=64),
        Categorical("pooling", ("max", "avg")),
        Integer("fc_layers", 1, 2),
        Choice("quant_bits", QUANT_BITS),
    ], constants={name: 2 for name in blocks} if fixed_depth else None)


def resnet_depth(config: Mapping[str, Any]) -> int:
    """Network depth ``2 + 2 * sum(blocks)``: Table 8's "18-50 (2)" (two basic-block
    convolutions per block, plus the stem convolution and the classifier)."""
    total = 0
    for i in range(1, RESNET_STAGES + 1):
        value = config.get(f"blocks_{i}") if isinstance(config, Mapping) else None
        if not is_integer(value) or value < 1:
            raise ValueError(f"config['blocks_{i}'] must be a positive integer, got {value!r}")
        total += int(value)
    return 2 + 2 * total


# name -> (factory, options it fixes)
_PRESETS: dict[str, tuple[Callable[..., SearchSpace], dict[str, Any]]] = {
    "ffnn": (ffnn_space, {}),
    "lenet": (lenet_space, {}),
    "resnet": (resnet_space, {}),
    "resnet18": (resnet_space, {"fixed_depth": True}),
}
PRESET_NAMES = tuple(_PRESETS)


def get_preset(name: str, **options: Any) -> SearchSpace:
    """A preset space by name (``ffnn``, ``lenet``, ``resnet``, ``resnet18``)."""
    if name not in _PRESETS:
        raise ValueError(f"preset must be one of {list(PRESET_NAMES)}, got {name!r}")
    factory, fixed = _PRESETS[name]
    allowed = [p for p in inspect.signature(factory).parameters if p not in fixed]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"preset {name!r}: unknown option {unknown[0]!r}; "
                         f"valid options: {allowed}")
    return factory(**fixed, **options)


def preset_for_algorithm(name: str, algorithm: str, **options: Any) -> SearchSpace:
    """:func:`get_preset` with the search algorithm's defaults for the options left out.

    The default algorithm (``"steerage"``) searches the FFNN space with
    ``optional_reduction=True``: on the bundled tabular datasets every network of
    Table 2 reduces its input, and the reduced inputs validated below the raw ones
    (benchmarks/RESULTS.md, "Optional dimensionality reduction"). Its spaces have no
    ``quant_bits``: the precision changes nothing a trial trains, so each trial
    chooses it after training instead (``precision.precision_of``: the fewest bits
    that keep the validation accuracy). ``"paper"`` keeps Tables 2, 6 and 8 exactly,
    ``quant_bits`` searched.
    """
    if algorithm == "paper":
        return get_preset(name, **options)
    if name == "ffnn":
        options.setdefault("optional_reduction", True)
    return get_preset(name, **options).without(["quant_bits"], "preset")
