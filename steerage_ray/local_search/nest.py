"""NeST for convolutional layers: feature-map growth, connection growth, magnitude
pruning and partial-area convolution, on a CNN whose classifier goes through SCANN.

The network is a :class:`~steerage_ray.local_search.convnet.SparseConvNet`: the
LeNet-style CNN of ``steerage_ray.models.build_lenet`` with masked convolutions in
``features`` and a :class:`SparseFeedForward` ``head`` (Scheme C's MLP, or a
skip-connected graph). The NeST scheme interleaves the conv
operations below with SCANN operations on the head, training and validating after each
one exactly like the SCANN schemes.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.checks import fraction, integer
from steerage_ray.data.dataset import Dataset
from steerage_ray.local_search.convnet import SparseConvNet
from steerage_ray.local_search.masked import MaskedConv2d, PartialAreaConv2d, pair_contributions
from steerage_ray.local_search.scann import (
    OPERATIONS as SCANN_OPERATIONS,
    ScannOptions,
    SchemeResult,
    PruningGuard,
    apply_operation,
    check_common_options,
    check_guard_options,
    grow_connections,
    prune_connections,
    run_steps,
)
from steerage_ray.models import eval_mode
from steerage_ray.precision import Bits
from steerage_ray.training import TrainSettings

NEST_OPERATIONS = ("grow_feature_maps", "grow_conv_connections", "prune_conv", "partial_area",
                   "prune_area")


# -- feature-map growth ----------------------------------------------------------------

@torch.no_grad()
def grow_feature_map(model: SparseConvNet, conv_index: int, X: np.ndarray | torch.Tensor,
                     y: np.ndarray | torch.Tensor, *, candidates: int = 8,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Add one output channel to convolution ``conv_index``, choosing its kernels.

    ``candidates`` random He-initialised kernel sets are tried in turn; each is scored by
    the loss on the batch ``(X, y)`` (forward passes only) and the best is kept. The next
    layer (conv or head) gets zero-initialised, active input weights for the new channel,
    so the network function is unchanged until training; because a zero read-out would
    make every candidate score the same, scoring reads the new channel through one
    random probe read-out shared by all candidates (both signs tried), scaled like the
    next layer's active weights. Returns each candidate's (best-sign) loss; the kept
    candidate is the first with the lowest.
    """
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    positions = model._conv_positions()
    if not 0 <= conv_index < len(positions):
        raise ValueError(f"conv_index must be in 0..{len(positions) - 1}, got {conv_index}")
    position = positions[conv_index]
    conv = model.features[position]
    grown = _with_out_channel(conv)
    model.features[position] = grown
    batch_norm = model._batch_norm_after(position)
    if batch_norm is not None:
        model.features[position + 1] = _with_batch_norm_channel(batch_norm)
    readout = _add_readout(model, conv_index)

    device = grown.weight.device
    x = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    target = torch.as_tensor(np.asarray(y), dtype=torch.long, device=device)
    fan_in = grown.in_channels * grown.kernel_size[0] * grown.kernel_size[1]
    kernel_shape = (candidates, grown.in_channels, *grown.kernel_size)
    kernels = torch.randn(kernel_shape, generator=generator).to(grown.weight) * (2 / fan_in) ** 0.5
    probe = torch.randn(readout.shape, generator=generator).to(grown.weight) * readout.scale
    losses = torch.empty(candidates)
    with eval_mode(model):
        for index, kernel in enumerate(kernels):
            grown.weight[-1] = kernel
            signed = []
            for sign in (1.0, -1.0):
                readout.set(sign * probe)
                signed.append(float(F.cross_entropy(model(x), target)))
            losses[index] = min(signed)
    grown.weight[-1] = kernels[int(torch.argmin(losses))]
    readout.set(torch.zeros_like(probe))
    return losses


class _Readout:
    """The weights through which the next layer reads a newly added channel."""

    def __init__(self, weight: torch.Tensor, index: tuple, mask: torch.Tensor) -> None:
        self.weight, self.index = weight, index
        active = weight[mask != 0]
        self.scale = float(active.std()) if active.numel() > 1 else 0.1
        self.shape = weight[index].shape

    def set(self, values: torch.Tensor) -> None:
        self.weight[self.index] = values


def _add_readout(model: SparseConvNet, conv_index: int) -> _Readout:
    """Give the consumer of conv ``conv_index`` an input for its new last channel."""
    convs = model.conv_layers()
    if conv_index + 1 < len(convs):
        position = model._conv_positions()[conv_index + 1]
        reader = _with_in_channel(model.features[position])
        model.features[position] = reader
        return _Readout(reader.weight.data, (slice(None), -1), reader.mask)
    per_channel = int(np.prod(model.feature_shape()[1:]))
    model.head.grow_inputs(per_channel)
    first = model.head.layers[0]
    columns = slice(model.head.in_features - per_channel, model.head.in_features)
    return _Readout(first.weight.data, (slice(None), columns), first.mask)


def _with_out_channel(conv: MaskedConv2d) -> MaskedConv2d:
    """A copy of ``conv`` with one more output channel (zero kernel, all connections active)."""
    grown = _resized_conv(conv, conv.in_channels, conv.out_channels + 1)
    with torch.no_grad():
        grown.weight[:-1] = conv.weight
        grown.mask[:-1] = conv.mask
        if conv.bias is not None:
            grown.bias[:-1] = conv.bias
        if isinstance(conv, PartialAreaConv2d):
            grown.area_mask[:-1] = conv.area_mask
    return grown


def _with_in_channel(conv: MaskedConv2d) -> MaskedConv2d:
    """A copy of ``conv`` reading one more input channel (zero kernels, active)."""
    grown = _resized_conv(conv, conv.in_channels + 1, conv.out_channels)
    with torch.no_grad():
        grown.weight[:, :-1] = conv.weight
        grown.mask[:, :-1] = conv.mask
        if conv.bias is not None:
            grown.bias.copy_(conv.bias)
        if isinstance(conv, PartialAreaConv2d):
            grown.area_mask[:, :-1] = conv.area_mask
    return grown


def _resized_conv(conv: MaskedConv2d, in_channels: int, out_channels: int) -> MaskedConv2d:
    """A conv like ``conv`` with new channel counts: zero weights, full masks."""
    if isinstance(conv, PartialAreaConv2d):
        resized = PartialAreaConv2d(in_channels, out_channels, conv.kernel_size, conv.input_size,
                                    conv.stride, conv.padding, conv.dilation,
                                    conv.bias is not None)
    else:
        resized = MaskedConv2d(in_channels, out_channels, conv.kernel_size, conv.stride,
                               conv.padding, conv.dilation, bias=conv.bias is not None)
    resized.to(conv.weight)
    with torch.no_grad():
        resized.weight.zero_()
        if resized.bias is not None:
            resized.bias.zero_()
    return resized


def _with_batch_norm_channel(batch_norm: nn.BatchNorm2d) -> nn.BatchNorm2d:
    """A copy of ``batch_norm`` with an identity channel appended (scale 1, shift 0)."""
    grown = nn.BatchNorm2d(batch_norm.num_features + 1, batch_norm.eps, batch_norm.momentum,
                           batch_norm.affine, batch_norm.track_running_stats)
    grown.to(batch_norm.running_mean if batch_norm.running_mean is not None
             else batch_norm.weight)
    state = batch_norm.state_dict()
    fresh = grown.state_dict()
    for name, value in state.items():
        if value.dim():
            fresh[name][:-1] = value
        else:
            fresh[name] = value
    grown.load_state_dict(fresh)
    return grown


# -- pruning -----------------------------------------------------------------------------

@torch.no_grad()
def prune_conv(model: SparseConvNet, ratio: float, *, largest: bool = False) -> int:
    """Magnitude pruning of the conv kernels under one global threshold.

    When a batch norm follows a conv, |w| is multiplied by the channel's scale
    |gamma| / sqrt(running_var + eps), the weight's real magnitude after folding.
    """
    scales = []
    for position in model._conv_positions():
        batch_norm = model._batch_norm_after(position)
        if batch_norm is None:
            scales.append(None)
            continue
        gamma = batch_norm.weight if batch_norm.affine else torch.ones_like(batch_norm.running_var)
        scale = gamma / torch.sqrt(batch_norm.running_var + batch_norm.eps)
        scales.append(scale.view(-1, 1, 1, 1))
    return prune_connections(model, ratio, largest=largest, layers=model.conv_layers(),
                             scales=scales)


# -- partial-area convolution --------------------------------------------------------------

@torch.no_grad()
def pair_responses(model: SparseConvNet, X: np.ndarray | torch.Tensor,
                   batch_size: int = 256) -> list[torch.Tensor]:
    """Per conv: mean |x_m * kernel_nm| over the images ``X`` at every output position,
    shaped ``(out, in, OH, OW)``: where each channel pair produces a response."""
    convs = model.conv_layers()
    totals: list[torch.Tensor | None] = [None] * len(convs)

    def accumulate(index: int):
        def hook(module, inputs, output):
            terms = pair_contributions(inputs[0], module.masked_weight(), module.stride,
                                       module.padding, module.dilation)
            response = terms.abs().sum(0).transpose(0, 1)
            totals[index] = response if totals[index] is None else totals[index] + response
        return hook

    hooks = [conv.register_forward_hook(accumulate(i)) for i, conv in enumerate(convs)]
    device = next(model.parameters()).device
    try:
        X = np.asarray(X)
        with eval_mode(model):
            for start in range(0, len(X), batch_size):
                model.features(torch.as_tensor(X[start:start + batch_size],
                                               dtype=torch.float32, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return [total / len(X) for total in totals]


@torch.no_grad()
def partial_area(model: SparseConvNet, X: np.ndarray | torch.Tensor, ratio: float, *,
                 incremental: bool = False) -> None:
    """NeST's partial-area convolution with pruning ratio ``ratio`` on every conv.

    For each (output, input) channel pair, the ``round(ratio * positions)`` output
    positions with the smallest mean response over the images ``X`` stop computing that
    pair's term (ties broken by position). Convs become :class:`PartialAreaConv2d`;
    a pair left with no position loses its kernel too. The areas are recomputed from
    scratch on every call, unless ``incremental``: then positions already masked stay
    masked and ``round(ratio * remaining positions)`` more go per pair (gradual
    partial-area pruning, the ``prune_area`` operation).
    """
    ratio = fraction(ratio, "area_ratio")
    responses = pair_responses(model, X)
    input_sizes = model.conv_input_sizes()
    for position, response, input_size in zip(model._conv_positions(), responses, input_sizes):
        conv = model.features[position]
        if not isinstance(conv, PartialAreaConv2d):
            conv = PartialAreaConv2d.from_masked(conv, input_size)
            model.features[position] = conv
        n_out, n_in, out_h, out_w = response.shape
        flat = response.reshape(n_out, n_in, -1)
        if incremental:
            previous = conv.area_mask.reshape(n_out, n_in, -1).to(flat)
            remaining = previous.sum(-1, keepdim=True)
            # masked positions rank first (-1 < any response), then the weakest kept ones
            ranked = torch.where(previous > 0, flat, torch.full_like(flat, -1.0))
            order = torch.sort(ranked, dim=-1, stable=True).indices
            drop = (flat.shape[-1] - remaining) + torch.round(ratio * remaining)
            rank = torch.empty_like(order).scatter_(
                -1, order, torch.arange(flat.shape[-1], device=order.device).expand_as(order))
            area = (rank >= drop).to(flat)
        else:
            count = min(round(ratio * flat.shape[-1]), flat.shape[-1])
            lowest = torch.sort(flat, dim=-1, stable=True).indices[..., :count]
            area = torch.ones_like(flat).scatter_(-1, lowest, 0.0)
        conv.area_mask.copy_(area.view_as(conv.area_mask))
        alive = area.any(-1).to(conv.mask)
        conv.set_mask(conv.mask * alive[:, :, None, None])


# -- the NeST scheme -------------------------------------------------------------------------

@dataclass(frozen=True)
class NestOptions:
    """Knobs of the NeST scheme (defaults are ours; the paper does not give them).

    - ``new_feature_maps`` channels are added to every conv per feature-map growth, each
      the best of ``candidate_kernels`` random kernel sets;
    - ``conv_growth_ratio`` / ``conv_pruning_ratio``: conv connection growth / pruning;
    - ``area_ratio``: partial-area pruning ratio, measured on ``area_images`` training
      images (higher: fewer FLOPs, Table 9's trade-off); ``partial_area`` masks that
      fraction of every pair's output positions, ``prune_area`` that fraction of the
      positions each pair still computes;
    - ``head``: the SCANN options of the classifier's Scheme C operations; its
      ``gradient_batches`` x ``gradient_batch_size`` training examples also score
      feature-map candidates and rank dormant conv connections;
    - ``schedule``: operations to cycle through, from ``NEST_OPERATIONS`` (convs) and the
      SCANN operations (head). Default: grow_feature_maps, grow_conv_connections,
      prune_hard (head), partial_area, then cycle (prune_conv, prune_connections), every
      pruning guarded. (Adding ``prune_area`` to the cycle cut FLOPs faster on digits
      8x8 LeNets but cost about a point of accuracy per step, so it is not a default);
    - ``prune_tolerance`` / ``max_undos``: the :class:`PruningGuard` of the pruning steps
      (conv and head), as in :class:`ScannOptions`;
    - ``accuracy_tolerance``: as in :class:`ScannOptions`.
    """

    new_feature_maps: int = 1
    candidate_kernels: int = 8
    conv_growth_ratio: float = 0.05
    conv_pruning_ratio: float = 0.3
    area_ratio: float = 0.3
    area_images: int = 512
    head: ScannOptions = field(default_factory=ScannOptions)
    schedule: tuple[str, ...] | None = None
    prune_tolerance: float | None = 0.01
    max_undos: int = 3
    accuracy_tolerance: float = 0.0

    def __post_init__(self) -> None:
        for name in ("conv_growth_ratio", "conv_pruning_ratio", "area_ratio"):
            fraction(getattr(self, name), name)
        if not isinstance(self.head, ScannOptions):
            raise ValueError(f"head must be a ScannOptions, got {type(self.head).__name__}")
        check_common_options(self, ("new_feature_maps", "candidate_kernels", "area_images"),
                             NEST_OPERATIONS + SCANN_OPERATIONS)
        check_guard_options(self)

    def guard(self, n_val: int | None = None) -> PruningGuard | None:
        """The scheme's :class:`PruningGuard` for ``n_val`` validation examples (None when
        ``prune_tolerance`` is None)."""
        if self.prune_tolerance is None:
            return None
        return PruningGuard(self.prune_tolerance, self.max_undos, n_val)

    def operations(self, iterations: int) -> list[str]:
        """The operation of each of the ``iterations`` steps."""
        if self.schedule is not None:
            return list(itertools.islice(itertools.cycle(self.schedule), iterations))
        prefix = ["grow_feature_maps", "grow_conv_connections", "prune_hard", "partial_area"]
        cycle = itertools.cycle(("prune_conv", "prune_connections"))
        return [*prefix, *itertools.islice(cycle, max(0, iterations - len(prefix)))][:iterations]


def run_nest(model: SparseConvNet, dataset: Dataset, *, iterations: int,
             settings: TrainSettings, options: NestOptions = NestOptions(), seed: int = 0,
             pretrained: bool = False, precision: Bits = None) -> SchemeResult:
    """NeST on the convs and Scheme C on the head: (operation -> train -> validate) x
    ``iterations``, keeping the best (see :func:`steerage_ray.local_search.scann.run_scheme`;
    pruning steps are guarded the same way)."""
    iterations = integer(iterations, "iterations", 1)
    if not isinstance(model, SparseConvNet):
        raise ValueError(f"NeST needs a SparseConvNet, got {type(model).__name__}")
    return run_steps(
        "nest", copy.deepcopy(model), dataset, options.operations(iterations),
        lambda net, operation, step_seed, scale: apply_nest_operation(
            net, operation, dataset, options, step_seed, scale),
        settings=settings, seed=seed, train_start=not pretrained,
        tolerance=options.accuracy_tolerance, guard=options.guard(len(dataset.y_val)),
        precision=precision)


def apply_nest_operation(model: SparseConvNet, operation: str, dataset: Dataset,
                         options: NestOptions, seed: int, scale: float = 1.0) -> None:
    """Apply one NeST operation, or a SCANN operation to the head; pruning ratios are
    multiplied by ``scale`` (a :class:`PruningGuard`'s)."""
    rows = np.random.default_rng(seed).permutation(len(dataset.y_train))
    if operation == "grow_feature_maps":
        batch = rows[:options.head.gradient_batch_size * options.head.gradient_batches]
        generator = torch.Generator().manual_seed(seed)
        for conv_index in range(len(model.conv_layers())):
            for _ in range(options.new_feature_maps):
                grow_feature_map(model, conv_index, dataset.X_train[batch],
                                 dataset.y_train[batch], candidates=options.candidate_kernels,
                                 generator=generator)
    elif operation == "grow_conv_connections":
        grow_connections(model, dataset.X_train, dataset.y_train,
                         options.conv_growth_ratio * scale,
                         layers=model.conv_layers(), batches=options.head.gradient_batches,
                         batch_size=options.head.gradient_batch_size, seed=seed)
    elif operation == "prune_conv":
        prune_conv(model, options.conv_pruning_ratio * scale)
    elif operation == "partial_area":
        partial_area(model, dataset.X_train[rows[:options.area_images]], options.area_ratio)
    elif operation == "prune_area":
        partial_area(model, dataset.X_train[rows[:options.area_images]],
                     options.area_ratio * scale, incremental=True)
    else:
        apply_operation(model, operation, dataset, options.head, seed, scale)
