"""CIFAR-style ResNets, the paper's search family for CIFAR-10 (Section 5.2.2, Table 8).

He et al., "Deep residual learning for image recognition" (CVPR 2016), adapted to small
images the way the widely used CIFAR ports do: a 3x3 stride-1 stem without max pooling,
then four stages at strides 1, 2, 2, 2 and global pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from steerage_ray.checks import integer, one_of
from steerage_ray.models._checks import POOLS, image_hw

BOTTLENECK_FROM_DEPTH = 50


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a projection (1x1 conv + batch norm)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (output width = ``width``)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.shortcut = shortcut(in_channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand to ``4 * width``, plus residual."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, four residual stages (``layer1`` .. ``layer4``), global pooling, classifier.

    Block type: ``bottleneck=None`` follows the paper ("basic blocks below 50 layers,
    bottleneck blocks from 50"), measuring depth as Table 8 does (``2 + 2 * sum(blocks)``,
    see ``space.resnet_depth``: blocks (2, 2, 2, 2) are ResNet-18); in the preset space
    only the all-6 corner reaches 50. A bottleneck network keeps the same number of
    blocks per stage (its true layer count is ``2 + 3 * sum(blocks)``) and, as in He et
    al.'s ResNet-50, ``stage_filters`` are the bottleneck widths with outputs 4x wider.

    Classifier: ``fc_layers=1`` is a single linear layer; ``fc_layers=2`` inserts a hidden
    layer of ``fc_hidden`` units with ReLU, by default ``stage_filters[-1]`` (as wide as the
    pooled features for basic blocks, a 4x reduction for bottleneck blocks).

    The network is input-size agnostic thanks to global pooling; ``image_size`` is
    checked so a bad size fails at build time rather than in the first forward pass.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | tuple[int, int],
        n_classes: int,
        stem_filters: int,
        stage_filters: Sequence[int],
        blocks: Sequence[int],
        pooling: str = "avg",
        fc_layers: int = 1,
        bottleneck: bool | None = None,
        fc_hidden: int | None = None,
    ) -> None:
        super().__init__()
        in_channels = integer(in_channels, "in_channels", 1)
        image_hw(image_size)
        n_classes = integer(n_classes, "n_classes", 1)
        stem_filters = integer(stem_filters, "stem_filters", 1)
        stage_filters = _four("stage_filters", stage_filters)
        blocks = _four("blocks", blocks)
        pooling = one_of(pooling, "pooling", POOLS)
        if fc_layers not in (1, 2):
            raise ValueError(f"fc_layers must be 1 or 2, got {fc_layers!r}")
        if bottleneck is None:
            bottleneck = 2 + 2 * sum(blocks) >= BOTTLENECK_FROM_DEPTH
        block = Bottleneck if bottleneck else BasicBlock

        self.stem = nn.Sequential(conv3x3(in_channels, stem_filters),
                                  nn.BatchNorm2d(stem_filters), nn.ReLU())
        channels = stem_filters
        stages = []
        for width, count, stride in zip(stage_filters, blocks, (1, 2, 2, 2)):
            stage_blocks = []
            for index in range(count):
                stage_blocks.append(block(channels, width, stride if index == 0 else 1))
                channels = width * block.expansion
            stages.append(nn.Sequential(*stage_blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1) if pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        if fc_layers == 1:
            self.fc = nn.Linear(channels, n_classes)
        else:
            hidden = (stage_filters[-1] if fc_hidden is None
                      else integer(fc_hidden, "fc_hidden", 1))
            self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(),
                                    nn.Linear(hidden, n_classes))

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


# The builder is the class itself, named like the other builders.
build_resnet = ResNet


def resnet18_cifar(n_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-18 as commonly adapted to CIFAR-10: 11,173,962 parameters for 10 classes.

    The widely used CIFAR port of He et al. (2016) (e.g. kuangliu/pytorch-cifar): 3x3
    stride-1 stem with 64 filters, basic blocks [2, 2, 2, 2] at widths 64-128-256-512,
    projection shortcuts, global average pooling and one linear layer.
    """
    return ResNet(in_channels, 32, n_classes, stem_filters=64,
                  stage_filters=(64, 128, 256, 512), blocks=(2, 2, 2, 2))


def _four(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != 4:
        raise ValueError(f"{name} must have one value per stage (4), got {values!r}")
    return tuple(integer(v, f"{name}[{i}]", 1) for i, v in enumerate(values))
