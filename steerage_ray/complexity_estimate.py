"""Parameters and FLOPs of a search-space config, computed analytically (no torch).

The evolutionary search checks resource budgets on tens of thousands of candidate
configs; building each network in PyTorch to count it would take longer than the whole
search. These formulas mirror the builders in ``steerage_ray.models`` layer by layer and
follow the conventions of ``models.count_dense_params`` and ``models.count_flops``:
trainable parameters counted densely (batch-norm weight and bias included, running
statistics excluded); FLOPs of convolutions and matrix multiplications only, one
multiply-add = 2 FLOPs (bias, batch norm, activation and pooling not counted).
tests/test_evolution.py checks the agreement with the builders on random configs.

Both counts are sums over :func:`config_layers`, a config's layers with their shapes in
forward order; ``steerage_ray.latency`` sums a measured latency table over the same list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from steerage_ray.checks import config_integer, integer, is_integer, is_number
from steerage_ray.data.reduction import reduced_dimension
from steerage_ray.families import check_family

__all__ = ["LAYER_DIMS", "ArchitectureCosts", "Complexity", "Layer", "ResourceConstraint", "config_layers",
           "estimate_complexity", "estimate_flops", "estimate_params", "model_input_shape"]

_STAGE_STRIDES = (1, 2, 2, 2)
_BOTTLENECK_EXPANSION = 4
_BOTTLENECK_FROM_DEPTH = 50  # models.resnet.BOTTLENECK_FROM_DEPTH: depth = 2 + 2 * sum(blocks)


class Complexity(NamedTuple):
    """Dense trainable parameters and forward FLOPs of one example."""

    params: int
    flops: int


def estimate_params(family: str, config: Mapping[str, object], input_shape: Sequence[int],
                    n_classes: int) -> int:
    """Trainable parameters of the network ``config`` describes (see estimate_complexity)."""
    return estimate_complexity(family, config, input_shape, n_classes).params


def estimate_flops(family: str, config: Mapping[str, object], input_shape: Sequence[int],
                   n_classes: int) -> int:
    """Forward FLOPs of one example; see :func:`estimate_complexity`."""
    return estimate_complexity(family, config, input_shape, n_classes).flops


def estimate_complexity(family: str, config: Mapping[str, object], input_shape: Sequence[int],
                        n_classes: int) -> Complexity:
    """Parameters and FLOPs of ``models.build_model(family, config, ...)``, without torch.

    ``input_shape`` is the shape of one example of the *original* dataset, ``(d,)`` or
    ``(C, H, W)``: the config's own preprocessing is applied here (see
    :func:`model_input_shape`), so a fixed constraint can judge configs that reduce the
    input differently.
    """
    layers = config_layers(family, config, input_shape, n_classes)
    return Complexity(sum(layer.params for layer in layers),
                      sum(layer.flops for layer in layers))


def model_input_shape(family: str, config: Mapping[str, object],
                      input_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape the network sees after the config's dimensionality reduction or downsampling.

    Mirrors ``data.prepare_for_config``: FFNN configs with a ``dr_method`` keep
    ``data.reduced_dimension(d, dr_ratio)`` features, others ``d``. Images become
    ``(C, image_size, image_size)`` when the config has an ``image_size``.
    """
    shape = tuple(input_shape)
    expected_rank = 1 if family == "ffnn" else 3
    if len(shape) != expected_rank or not all(is_integer(size) and size >= 1 for size in shape):
        expected = "(d,)" if family == "ffnn" else "(C, H, W)"
        raise ValueError(
            f"input_shape for family {family!r} must be {expected} of positive ints, got {shape}"
        )
    if family == "ffnn":
        if config.get("dr_method") is None:
            return shape
        return (reduced_dimension(shape[0], config.get("dr_ratio")),)
    if config.get("image_size") is None:
        return shape
    size = config_integer(config, "image_size")
    return (shape[0], size, size)


@dataclass(frozen=True)
class ResourceConstraint:
    """A budget on the analytic parameter and FLOP counts of configs of one family.

    ``None`` leaves a resource unbounded. ``input_shape`` is the original dataset's
    example shape (before the config's reduction), as in :func:`estimate_complexity`.
    """

    family: str
    input_shape: tuple[int, ...]
    n_classes: int
    max_params: int | None = None
    max_flops: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "max_flops"):
            limit = getattr(self, name)
            if limit is not None and (not is_number(limit) or limit <= 0):
                raise ValueError(f"{name} must be a positive number or None, got {limit!r}")
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        check_family(self.family)
        model_input_shape(self.family, {}, self.input_shape)  # validates input_shape
        integer(self.n_classes, "n_classes", 1)

    def is_feasible(self, config: Mapping[str, object]) -> bool:
        """Whether ``config``'s estimated params and FLOPs are within the budget."""
        if self.max_params is None and self.max_flops is None:
            return True
        cost = estimate_complexity(self.family, config, self.input_shape, self.n_classes)
        return ((self.max_params is None or cost.params <= self.max_params)
                and (self.max_flops is None or cost.flops <= self.max_flops))


@dataclass(frozen=True)
class ArchitectureCosts:
    """``cost_fn`` for the multi-objective search: an architecture's ``params`` and
    ``flops`` (the built model's dense counts, exactly), computed instead of learned."""

    family: str
    input_shape: tuple[int, ...]
    n_classes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        check_family(self.family)
        model_input_shape(self.family, {}, self.input_shape)  # validates input_shape
        integer(self.n_classes, "n_classes", 1)

    def __call__(self, config: Mapping[str, object]) -> dict[str, float]:
        cost = estimate_complexity(self.family, config, self.input_shape, self.n_classes)
        return {"params": float(cost.params), "flops": float(cost.flops)}


class Layer(NamedTuple):
    """One layer (or fused group of layers) of a config's network, with its shapes.

    ``op`` names what the layer is; ``dims`` are the sizes that decide its cost, in the
    order :data:`LAYER_DIMS` names them (input sizes first: ``in_features``, input
    channels, input height and width); ``params`` and ``flops`` follow the module's
    conventions. The layer list of a config is the one place that knows how a family's
    shapes flow, shared by the params/FLOPs estimate and ``steerage_ray.latency``.
    """

    op: str
    dims: tuple
    params: int = 0
    flops: int = 0

    @property
    def key(self) -> str:
        """A stable text identity, e.g. ``linear(40,300)`` (a latency table's key)."""
        return f"{self.op}({','.join(str(d) for d in self.dims)})"


#: The ops of :func:`config_layers` and the meaning of their ``dims``.
LAYER_DIMS: dict[str, tuple[str, ...]] = {
    "linear": ("in_features", "out_features"),
    "relu": ("features",),
    # LeNet stage: 'same'-padded conv + ReLU + 2x2 pooling ('max' or 'avg')
    "conv_stage": ("in_channels", "out_channels", "kernel", "height", "width", "pool"),
    # ResNet stem: 3x3 conv + batch norm + ReLU
    "stem": ("in_channels", "out_channels", "height", "width"),
    "basic_block": ("in_channels", "planes", "stride", "height", "width"),
    "bottleneck_block": ("in_channels", "planes", "stride", "height", "width"),
    # global pooling to 1x1 ('max' or 'avg')
    "global_pool": ("channels", "height", "width", "pool"),
}


def config_layers(family: str, config: Mapping[str, object], input_shape: Sequence[int],
                  n_classes: int) -> list[Layer]:
    """The layers of ``models.build_model(family, config, ...)`` in forward order.

    ``input_shape`` is the original dataset's example shape, as in
    :func:`estimate_complexity` (whose counts are the sums over these layers). Reshapes
    (``flatten``) are not layers.
    """
    check_family(family)
    integer(n_classes, "n_classes", 1)
    shape = model_input_shape(family, config, input_shape)
    return _LAYERS[family](config, shape, n_classes)


def _ffnn(config: Mapping[str, object], shape: tuple[int, ...], n_classes: int) -> list[Layer]:
    num_layers = config_integer(config, "num_layers")
    hidden = [config_integer(config, f"neurons_{i}") for i in range(1, num_layers + 1)]
    return _mlp(shape[0], hidden, n_classes)


def _lenet(config: Mapping[str, object], shape: tuple[int, ...], n_classes: int) -> list[Layer]:
    """Two 'same'-padded conv + ReLU + 2x2 floor-pooling stages, then an MLP."""
    channels, height, width = shape
    kernel = config_integer(config, "kernel_size")
    padding = kernel // 2
    layers = []
    for key, pool_key in (("conv1_filters", "pool1"), ("conv2_filters", "pool2")):
        filters = config_integer(config, key)
        out_height = height + 2 * padding - kernel + 1
        out_width = width + 2 * padding - kernel + 1
        layers.append(Layer(
            "conv_stage", (channels, filters, kernel, height, width, config.get(pool_key)),
            filters * channels * kernel * kernel + filters,
            2 * out_height * out_width * filters * channels * kernel * kernel))
        channels, height, width = filters, out_height // 2, out_width // 2
        if height < 1 or width < 1:
            raise ValueError(
                f"image of shape {shape} is too small for kernel_size {kernel}: "
                f"the {key} stage leaves no pixels"
            )
    return layers + _mlp(channels * height * width,
                         [config_integer(config, key) for key in ("fc1", "fc2", "fc3")],
                         n_classes)


def _resnet(config: Mapping[str, object], shape: tuple[int, ...], n_classes: int) -> list[Layer]:
    """CIFAR-style ResNet: 3x3 stem, four stages (basic or bottleneck blocks), pooled FC head."""
    channels, height, width = shape
    stem = config_integer(config, "conv1_filters")
    layers = [Layer("stem", (channels, stem, height, width), 9 * channels * stem + 2 * stem,
                    2 * height * width * stem * 9 * channels)]
    channels = stem
    blocks = [config_integer(config, f"blocks_{i}") for i in range(1, 5)]
    planes = [config_integer(config, f"conv{i}_filters") for i in range(2, 6)]
    bottleneck = 2 + 2 * sum(blocks) >= _BOTTLENECK_FROM_DEPTH
    block = _bottleneck_block if bottleneck else _basic_block
    for stage_planes, count, stage_stride in zip(planes, blocks, _STAGE_STRIDES):
        for index in range(count):
            stride = stage_stride if index == 0 else 1
            layer, out_channels = block(channels, stage_planes, stride, height, width)
            layers.append(layer)
            channels = out_channels
            height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
    layers.append(Layer("global_pool", (channels, height, width, config.get("pooling"))))
    hidden = [planes[-1]] if config_integer(config, "fc_layers") == 2 else []
    return layers + _mlp(channels, hidden, n_classes)


def _basic_block(in_channels: int, planes: int, stride: int, height: int,
                 width: int) -> tuple[Layer, int]:
    """Two 3x3 conv + BN, projection shortcut when the shape changes; returns out channels."""
    out_pixels = ((height - 1) // stride + 1) * ((width - 1) // stride + 1)
    params = 9 * in_channels * planes + 9 * planes * planes + 4 * planes
    flops = 2 * out_pixels * 9 * planes * (in_channels + planes)
    if stride != 1 or in_channels != planes:
        params += in_channels * planes + 2 * planes
        flops += 2 * out_pixels * planes * in_channels
    return (Layer("basic_block", (in_channels, planes, stride, height, width), params, flops),
            planes)


def _bottleneck_block(in_channels: int, planes: int, stride: int, height: int,
                      width: int) -> tuple[Layer, int]:
    """1x1 reduce, 3x3 with the stride, 1x1 expand (each + BN), projection when needed."""
    out_channels = _BOTTLENECK_EXPANSION * planes
    out_pixels = ((height - 1) // stride + 1) * ((width - 1) // stride + 1)
    params = (in_channels * planes + 9 * planes * planes + planes * out_channels
              + 2 * (planes + planes + out_channels))
    flops = 2 * (height * width * planes * in_channels + out_pixels * 9 * planes * planes
                 + out_pixels * out_channels * planes)
    if stride != 1 or in_channels != out_channels:
        params += in_channels * out_channels + 2 * out_channels
        flops += 2 * out_pixels * out_channels * in_channels
    return (Layer("bottleneck_block", (in_channels, planes, stride, height, width), params,
                  flops), out_channels)


def _mlp(in_features: int, hidden: Sequence[int], n_classes: int) -> list[Layer]:
    """``Linear + ReLU`` per hidden width, then the output ``Linear`` (models.build_ffnn)."""
    layers = []
    for size in hidden:
        layers += [Layer("linear", (in_features, size), in_features * size + size,
                         2 * in_features * size),
                   Layer("relu", (size,))]
        in_features = size
    return layers + [Layer("linear", (in_features, n_classes),
                           in_features * n_classes + n_classes, 2 * in_features * n_classes)]


_LAYERS = {"ffnn": _ffnn, "lenet": _lenet, "resnet": _resnet}
