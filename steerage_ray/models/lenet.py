"""LeNet-style CNNs, the paper's search family for MNIST (Section 5.2.1, Table 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from steerage_ray.checks import integer, one_of
from steerage_ray.models._checks import POOLS, image_hw
from steerage_ray.models.ffnn import build_ffnn


class LeNet(nn.Module):
    """Two ``conv -> ReLU -> 2x2 pool`` stages, then an MLP classifier.

    ``features`` holds the convolutional part and ``classifier`` the fully-connected part
    (an ``nn.Sequential`` built by :func:`build_ffnn`), so local search can run NeST on
    the one and SCANN on the other.

    ``padding="same"`` pads both convolutions by ``kernel_size // 2`` so every image size
    from 8 to 32 works with 3x3 and 5x5 kernels (pooling floors odd sizes). A pair of
    ints pads each convolution explicitly, as the classic LeNet-5 does with ``(2, 0)``.
    The classifier's input width is computed from the image size, never hard-coded.

    ``fc_sizes`` lists the hidden fully-connected widths (any number, e.g. the search
    space's ``fc1, fc2, fc3``); the output layer is added after them.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | tuple[int, int],
        n_classes: int,
        conv_filters: Sequence[int] = (6, 16),
        kernel_size: int = 5,
        pools: Sequence[str] = ("max", "max"),
        fc_sizes: Sequence[int] = (120, 84),
        padding: str | tuple[int, int] = "same",
    ) -> None:
        super().__init__()
        in_channels = integer(in_channels, "in_channels", 1)
        kernel_size = integer(kernel_size, "kernel_size", 1)
        height, width = image_hw(image_size)
        conv_filters = _pair("conv_filters", conv_filters)
        pools = _pair("pools", pools)
        paddings = _paddings(padding, kernel_size)

        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(2):
            filters = integer(conv_filters[stage], f"conv_filters[{stage}]", 1)
            pool = one_of(pools[stage], f"pools[{stage}]", POOLS)
            layers += [
                nn.Conv2d(channels, filters, kernel_size, padding=paddings[stage]),
                nn.ReLU(),
                nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2),
            ]
            channels = filters
            height = _conv_then_pool(height, kernel_size, paddings[stage])
            width = _conv_then_pool(width, kernel_size, paddings[stage])
            if height < 1 or width < 1:
                raise ValueError(
                    f"image_size {image_size!r} is too small for kernel_size {kernel_size} "
                    f"with padding {padding!r}: conv stage {stage + 1} leaves no pixels; "
                    "use a larger image, a smaller kernel or padding='same'"
                )
        self.features = nn.Sequential(*layers)
        self.classifier = build_ffnn(channels * height * width, fc_sizes, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


# The builder is the class itself, named like the other builders.
build_lenet = LeNet


def lenet5_baseline(n_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> LeNet:
    """The paper's LeNet-5 baseline (Table 7) as in the common PyTorch implementation.

    LeCun et al., "Gradient-based learning applied to document recognition" (1998), as
    commonly ported to PyTorch for 28x28 MNIST: conv 5x5 with 6 filters (padding 2), ReLU,
    2x2 max pool, conv 5x5 with 16 filters (no padding), ReLU, 2x2 max pool, FC 400-120-84
    -10. That is 61,706 parameters for 28x28 inputs and 10 classes (the paper's Table 7
    rounds it to 62.0k).
    """
    return LeNet(in_channels, image_size, n_classes, conv_filters=(6, 16), kernel_size=5,
                 pools=("max", "max"), fc_sizes=(120, 84), padding=(2, 0))


def _pair(name: str, values: Sequence) -> Sequence:
    if isinstance(values, str) or len(values) != 2:
        raise ValueError(f"{name} must have one entry per conv layer (2), got {values!r}")
    return values


def _paddings(padding: str | tuple[int, int], kernel_size: int) -> tuple[int, int]:
    if padding == "same":
        return kernel_size // 2, kernel_size // 2
    if isinstance(padding, str) or not isinstance(padding, Sequence) or len(padding) != 2:
        raise ValueError(f"padding must be 'same' or a pair of ints, got {padding!r}")
    return integer(padding[0], "padding[0]", 0), integer(padding[1], "padding[1]", 0)


def _conv_then_pool(size: int, kernel_size: int, padding: int) -> int:
    """Spatial size after a stride-1 convolution and a 2x2, stride-2 floor pooling."""
    return (size + 2 * padding - kernel_size + 1) // 2
