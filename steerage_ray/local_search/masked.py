"""Masked layers: sparsity as a weight mask that training cannot undo.

Grow-and-prune synthesis changes *which* weights exist without changing tensor shapes:
a weight is active where its mask is 1 and dormant where it is 0. Dormant weights are
held at exactly zero: the forward pass multiplies by the mask (so their gradient is zero)
and ``apply_mask()`` re-zeroes them after every optimizer step (momentum and weight
decay would otherwise move them). Growth flips mask entries to 1 (the weight starts at
0), pruning flips them to 0.

Cost conventions (those of ``steerage_ray.models.count_params/count_flops`` for the
dense case): parameters are non-zero weights plus biases; FLOPs count a multiply and an
add per *active* weight per output position (``2 * active``) of linear and conv layers
only (no bias adds, activations or pooling), so a fully active layer costs exactly
what ``count_flops`` reports for its dense twin.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.models.probe import eval_mode, zero_input


class _MaskedWeight:
    """Mask handling shared by the masked layers (``weight`` and ``mask`` buffer)."""

    def _init_mask(self, mask: torch.Tensor | None) -> None:
        if mask is None:
            mask = torch.ones_like(self.weight)
        elif mask.shape != self.weight.shape:
            raise ValueError(f"mask must have the weight's shape {tuple(self.weight.shape)}, "
                             f"got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.detach().to(self.weight).clone())
        self.apply_mask()

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def _copy_dense(self, dense: nn.Module, mask: torch.Tensor | None):
        """Take ``dense``'s device, weight and bias (and ``mask``); return self."""
        self.to(dense.weight)
        with torch.no_grad():
            self.weight.copy_(dense.weight)
            if dense.bias is not None:
                self.bias.copy_(dense.bias)
        if mask is not None:
            self.set_mask(mask)
        return self

    @torch.no_grad()
    def apply_mask(self) -> None:
        """Zero dormant weights (and their gradients) in place; call after every step."""
        self.weight.mul_(self.mask)
        if self.weight.grad is not None:
            self.weight.grad.mul_(self.mask)

    @torch.no_grad()
    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the mask (same shape) and zero the weights it turns off."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask must have shape {tuple(self.mask.shape)}, "
                             f"got {tuple(mask.shape)}")
        self.mask.copy_(mask.to(self.mask))
        self.apply_mask()

    def active_weights(self) -> int:
        return int(self.mask.count_nonzero())


class MaskedLinear(_MaskedWeight, nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a 0/1 mask."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 mask: torch.Tensor | None = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_mask(mask)

    @classmethod
    def from_dense(cls, linear: nn.Linear, mask: torch.Tensor | None = None) -> "MaskedLinear":
        """A masked copy of ``linear`` (all weights active unless ``mask`` is given)."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        return layer._copy_dense(linear, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)

    def effective_flops(self) -> int:
        """FLOPs for one example: a multiply-add (2 FLOPs) per active weight."""
        return 2 * self.active_weights()


class MaskedConv2d(_MaskedWeight, nn.Conv2d):
    """``nn.Conv2d`` whose kernel is multiplied by a 0/1 mask of the weight's shape."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True,
                 mask: torch.Tensor | None = None) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride,
                           padding=padding, dilation=dilation, groups=groups, bias=bias)
        self._init_mask(mask)

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, mask: torch.Tensor | None = None) -> "MaskedConv2d":
        """A masked copy of ``conv`` (zero padding only)."""
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("MaskedConv2d.from_dense needs a conv with numeric zero padding, "
                             f"got padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, conv.bias is not None)
        return layer._copy_dense(conv, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """Spatial output size for an ``(H, W)`` input."""
        return tuple(
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip(input_size, self.padding, self.dilation,
                                                 self.kernel_size, self.stride))

    def effective_flops(self, input_size: tuple[int, int]) -> int:
        """FLOPs for one example: a multiply-add per active weight per output position."""
        return 2 * self.active_weights() * math.prod(self.output_size(input_size))


SMALL_MAP_POSITIONS = 64  # up to this many output positions PartialAreaConv2d unfolds


class PartialAreaConv2d(MaskedConv2d):
    """A masked convolution in which each (output, input) channel pair only computes
    its contribution on a subset of output positions (NeST's partial-area convolution).

    ``area_mask[n, m, i, j] = 0`` drops input channel ``m``'s contribution to output
    channel ``n`` at position ``(i, j)``. The input size is fixed at construction (the
    area mask lives on the output grid). Two exact implementations are used, chosen by
    output size from measurements on 1 CPU thread (forward+backward, batch 128-256):
    for small maps (<= 64 positions, e.g. 6->16 channels on 4x4) batched per-position
    matrix products over unfolded patches were 2.1 ms vs 14 ms for the grouped conv;
    for large maps (14x14, 28x28) a grouped convolution producing every pair's
    contribution, masked and summed, was 2-3x faster (28 vs 59 ms, 16 vs 53 ms).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, input_size, stride=1,
                 padding=0, dilation=1, bias: bool = True, mask: torch.Tensor | None = None,
                 area_mask: torch.Tensor | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups=1, bias=bias, mask=mask)
        self.input_size = tuple(int(s) for s in input_size)
        area_shape = (out_channels, in_channels, *self.output_size(self.input_size))
        if area_mask is None:
            area_mask = torch.ones(area_shape)
        elif tuple(area_mask.shape) != area_shape:
            raise ValueError(f"area_mask must have shape (out, in, OH, OW) = {area_shape}, "
                             f"got {tuple(area_mask.shape)}")
        self.register_buffer("area_mask", area_mask.detach().to(self.weight).clone())
        self.unfolded = area_shape[2] * area_shape[3] <= SMALL_MAP_POSITIONS

    @classmethod
    def from_masked(cls, conv: MaskedConv2d, input_size: tuple[int, int]) -> "PartialAreaConv2d":
        """A partial-area copy of ``conv`` (full area) for inputs of ``input_size``."""
        if conv.groups != 1:
            raise ValueError(f"PartialAreaConv2d needs groups=1, got groups={conv.groups}")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, input_size,
                    conv.stride, conv.padding, conv.dilation, conv.bias is not None,
                    mask=conv.mask)
        layer.to(conv.weight)
        with torch.no_grad():
            layer.weight.copy_(conv.weight * conv.mask)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] != self.input_size[0] or x.shape[-1] != self.input_size[1]:
            raise ValueError("PartialAreaConv2d got an input whose spatial size differs from "
                             "the input_size it was built for")
        if self.unfolded:
            y = self._forward_unfolded(x)
        else:
            y = self._forward_grouped(x)
        bias = self.bias
        if bias is not None:
            y = y + bias.view(1, -1, 1, 1)
        return y

    def _forward_unfolded(self, x: torch.Tensor) -> torch.Tensor:
        n_out, n_in = self.area_mask.shape[0], self.area_mask.shape[1]
        out_h, out_w = self.area_mask.shape[2], self.area_mask.shape[3]
        positions = out_h * out_w
        patches = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        kernel = self.masked_weight().reshape(n_out, n_in, -1, 1)
        weight_per_position = kernel * self.area_mask.reshape(n_out, n_in, 1, positions)
        weight_per_position = weight_per_position.reshape(n_out, -1, positions)
        y = torch.bmm(patches.permute(2, 0, 1), weight_per_position.permute(2, 1, 0))
        return y.permute(1, 2, 0).reshape(x.shape[0], n_out, out_h, out_w)

    def _forward_grouped(self, x: torch.Tensor) -> torch.Tensor:
        contributions = pair_contributions(x, self.masked_weight(), self.stride, self.padding,
                                           self.dilation)
        return (contributions * self.area_mask.transpose(0, 1)).sum(1)

    def effective_flops(self, input_size: tuple[int, int] | None = None) -> int:
        """2 x (active kernel weights of each channel pair x its unmasked positions)."""
        active_per_pair = self.mask.flatten(2).sum(-1)
        positions_per_pair = self.area_mask.flatten(2).sum(-1)
        return 2 * int((active_per_pair * positions_per_pair).sum())


def pair_contributions(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int],
                       padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """Every (input channel m, output channel n) term ``x_m * weight[n, m]`` of a
    convolution, shaped ``(batch, in, out, OH, OW)``: one grouped convolution."""
    n_out, n_in = weight.shape[0], weight.shape[1]
    per_pair_kernels = weight.transpose(0, 1).reshape(n_in * n_out, 1, weight.shape[2],
                                                      weight.shape[3])
    contributions = F.conv2d(x, per_pair_kernels, None, stride, padding, dilation, n_in)
    return contributions.view(x.shape[0], n_in, n_out, contributions.shape[-2],
                              contributions.shape[-1])


MASKED_TYPES = (MaskedLinear, MaskedConv2d)


def masked_modules(model: nn.Module) -> list[nn.Module]:
    """The masked layers of ``model`` in definition order."""
    return [m for m in model.modules() if isinstance(m, MASKED_TYPES)]


def apply_masks(model: nn.Module) -> None:
    """Re-zero every dormant weight of ``model``; pass as ``train_model(after_step=...)``."""
    for module in masked_modules(model):
        module.apply_mask()


@torch.no_grad()
def effective_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one example through ``model``, counting only active weights.

    Masked layers count their active weights (and unmasked areas); plain ``nn.Linear`` and
    ``nn.Conv2d`` count densely, as ``steerage_ray.models.count_flops`` does, so a model
    without masks gets the same number from both.
    """
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, PartialAreaConv2d):
            total += module.effective_flops()
        elif isinstance(module, MaskedConv2d):
            total += module.effective_flops(tuple(inputs[0].shape[-2:]))
        elif isinstance(module, MaskedLinear):
            total += module.effective_flops()
        elif isinstance(module, nn.Conv2d):
            total += 2 * module.weight.numel() * math.prod(output.shape[-2:])
        elif isinstance(module, nn.Linear):
            total += 2 * module.weight.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with eval_mode(model):
            model(zero_input(model, input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total
