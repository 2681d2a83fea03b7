"""Post-training weight quantization, the search's ``quant_bits`` dimension (Section 4.3.1)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from steerage_ray.space.presets import QUANT_BITS  # the search's bit widths are the supported ones


def quantize_model(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` whose Linear and Conv weights and biases use ``bits`` bits.

    Fake quantization: values are rounded to a symmetric uniform integer grid and stored
    back as floats, so the copy runs anywhere the original runs and its accuracy is what
    an integer implementation of the same weights would give. Weights get one scale per
    output channel (row of a Linear, filter of a Conv), biases one scale per tensor
    (per-element scales would make them exact). The grid is symmetric with no zero
    point, so zeros stay exactly zero and pruned or masked models keep their sparsity.
    Masked layers must hold their zeros in the ``weight`` parameter itself.
    Other parameters (e.g. batch norm, usually folded into the convolution when
    deploying) and activations stay in float. ``bits=32`` returns an unchanged copy.
    The original model is never modified.
    """
    if bits not in QUANT_BITS:
        raise ValueError(f"bits must be one of {QUANT_BITS}, got {bits!r}")
    quantized = copy.deepcopy(model)
    if bits == 32:
        return quantized
    with torch.no_grad():
        for module in quantized.modules():
            if not isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
                continue
            if not isinstance(module.weight, nn.Parameter):
                raise ValueError(
                    f"cannot quantize {type(module).__name__}: its weight is computed (torch "
                    "pruning or parametrization); make it a plain parameter first, e.g. "
                    "torch.nn.utils.prune.remove(module, 'weight')"
                )
            module.weight.copy_(fake_quantize(module.weight, bits, per_channel=True))
            if module.bias is not None:
                module.bias.copy_(fake_quantize(module.bias, bits, per_channel=False))
    return quantized


def fake_quantize(tensor: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    """``tensor`` rounded to a symmetric ``bits``-bit grid (per dim-0 slice or per tensor).

    The grid is ``scale * {-(2**(bits-1) - 1), ..., 2**(bits-1) - 1}`` with ``scale`` =
    max |value| / (2**(bits-1) - 1), so the largest magnitude is represented exactly.
    All-zero slices stay zero.
    """
    levels = 2 ** (bits - 1) - 1
    if per_channel and tensor.dim() > 1:
        max_abs = tensor.abs().amax(dim=tuple(range(1, tensor.dim())), keepdim=True)
    else:
        max_abs = tensor.abs().amax()
    scale = torch.where(max_abs > 0, max_abs / levels, torch.ones_like(max_abs))
    return torch.round(tensor / scale).clamp_(-levels, levels) * scale
