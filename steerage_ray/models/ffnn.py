"""Feed-forward networks (multilayer perceptrons), the paper's FFNN family (Table 2)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from steerage_ray.checks import integer


def build_ffnn(in_features: int, hidden_sizes: Sequence[int], n_classes: int) -> nn.Sequential:
    """A plain MLP: ``Linear + ReLU`` per hidden layer, then a linear output layer.

    The output layer has no activation: it returns logits for ``nn.CrossEntropyLoss``.
    A plain ``nn.Sequential`` keeps every layer addressable by index, which the SCANN
    local search relies on when it grows or prunes neurons.
    """
    width = integer(in_features, "in_features", 1)
    n_classes = integer(n_classes, "n_classes", 1)
    layers: list[nn.Module] = []
    for index, size in enumerate(hidden_sizes):
        size = integer(size, f"hidden_sizes[{index}]", 1)
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
