"""Model size and cost: the parameter and FLOP counts the paper reports (Tables 4-9)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from steerage_ray.checks import integer
from steerage_ray.models.probe import eval_mode, zero_input


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters, pruned connections left out.

    A pruned (masked) connection is an exact zero in the weight of a linear or
    convolutional layer; those do not count, which makes this the "#weights" of a sparse
    network. Biases and normalisation parameters always count, even when they are
    exactly zero (batch norm initialises its bias to zero). For a dense network this
    equals :func:`count_dense_params`, except for the rare weight that is exactly zero
    by chance (a few in ResNet-18's 11M at initialisation), which counts as pruned.
    """
    total = 0
    for module in model.modules():
        prunable = isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            if prunable and name == "weight":
                total += int(torch.count_nonzero(parameter))
            else:
                total += parameter.numel()
    return total


def count_dense_params(model: nn.Module) -> int:
    """Number of trainable parameters, zeros included (the usual ``numel`` count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of one example of shape ``input_shape`` (no batch dim).

    Counted with ``torch.utils.flop_counter.FlopCounterMode``: matrix multiplications and
    convolutions only, one multiply-add = 2 FLOPs (a ``Linear(10, 5)`` costs 100).
    Bias additions, batch norm, activations and pooling are not counted, the usual
    convention in the literature. Weights count densely: effective FLOPs of masked
    models are computed by local search. The model runs in eval mode on a zero input
    on its own device; its training flag and buffers (e.g. batch-norm statistics) are
    left as they were.
    """
    shape = [integer(size, f"input_shape[{i}]", 1) for i, size in enumerate(input_shape)]
    example = zero_input(model, shape)
    with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulate operations of one forward pass: :func:`count_flops` / 2."""
    return count_flops(model, input_shape) // 2
