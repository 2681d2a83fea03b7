"""The CNN that NeST works on: masked convolutions feeding a SCANN feed-forward head,
and its compaction (dead channels and neurons removed). The operations are in ``nest``."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.masked import MaskedConv2d, PartialAreaConv2d
from steerage_ray.models import eval_mode, zero_input

_ELEMENTWISE = (nn.ReLU, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.Identity, nn.Dropout)


class SparseConvNet(nn.Module):
    """Masked conv ``features`` -> flatten -> :class:`SparseFeedForward` ``head``.

    ``features`` may hold ``MaskedConv2d`` (or ``PartialAreaConv2d``), ``BatchNorm2d``,
    ``ReLU``, ``MaxPool2d``/``AvgPool2d`` (no padding) and ``Dropout``; each batch norm
    must directly follow a convolution.
    """

    def __init__(self, features: nn.Sequential, head: SparseFeedForward,
                 input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        for module in features:
            if not isinstance(module, (MaskedConv2d, *_ELEMENTWISE)):
                raise ValueError(f"features may hold masked convolutions, batch norm, ReLU, "
                                 f"pooling and dropout only, got {type(module).__name__}")
            pooling = isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))
            if pooling and module.padding not in (0, (0, 0)):
                raise ValueError(f"pooling in features must not pad (constant channels must "
                                 f"stay constant), got padding={module.padding!r}")
        self.features = features
        self.head = head
        self.input_shape = tuple(int(s) for s in input_shape)

    @classmethod
    def from_lenet(cls, lenet: nn.Module, input_shape: tuple[int, int, int], *,
                   skip_connections: bool = False) -> "SparseConvNet":
        """The masked twin of a ``LeNet`` (``features`` + ``classifier`` Sequential)."""
        layers = [MaskedConv2d.from_dense(m) if isinstance(m, nn.Conv2d) else copy.deepcopy(m)
                  for m in lenet.features]
        linears = [m for m in lenet.classifier if isinstance(m, nn.Linear)]
        head = SparseFeedForward.from_linears(linears, skip_connections=skip_connections)
        return cls(nn.Sequential(*layers), head.to(linears[0].weight), input_shape)

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_input(x))

    def conv_layers(self) -> list[MaskedConv2d]:
        return [m for m in self.features if isinstance(m, MaskedConv2d)]

    def _conv_positions(self) -> list[int]:
        return [i for i, m in enumerate(self.features) if isinstance(m, MaskedConv2d)]

    def _batch_norm_after(self, position: int) -> nn.BatchNorm2d | None:
        following = self.features[position + 1] if position + 1 < len(self.features) else None
        return following if isinstance(following, nn.BatchNorm2d) else None

    @torch.no_grad()
    def conv_input_sizes(self) -> list[tuple[int, int]]:
        """Spatial input size of every convolution, for ``input_shape`` images."""
        sizes = []
        hooks = [conv.register_forward_hook(
            lambda module, inputs, output: sizes.append(tuple(inputs[0].shape[-2:])))
            for conv in self.conv_layers()]
        try:
            self.features(zero_input(self, self.input_shape))
        finally:
            for hook in hooks:
                hook.remove()
        return sizes

    def feature_shape(self) -> tuple[int, int, int]:
        """Shape of the ``features`` output for one example."""
        with torch.no_grad():
            out = self.features(zero_input(self, self.input_shape))
        return tuple(out.shape[1:])

    # -- dead channels ---------------------------------------------------------------

    @torch.no_grad()
    def compact(self) -> "SparseConvNet":
        """An equivalent network without dead channels and dead head neurons.

        A channel whose kernels are all dormant outputs a constant map. It is removed when
        that is exact: its constant is folded into the head's biases (last conv), or it
        is zero (e.g. a ReLU of a negative bias) for an inner conv. Channels that feed
        nothing active downstream are removed too.
        """
        model = copy.deepcopy(self)
        positions = model._conv_positions()
        convs = model.conv_layers()
        values = _constant_channel_values(model)
        keep = [torch.ones(c.out_channels, dtype=torch.bool) for c in convs]
        for i, conv in enumerate(convs):
            constant = ~(conv.mask.flatten(1) != 0).any(1).cpu()
            removable = constant if i == len(convs) - 1 else constant & (values[i] == 0)
            keep[i] &= ~removable
        positions_per_channel = int(np.prod(model.feature_shape()[1:]))
        feeds_head = torch.zeros(model.head.in_features, dtype=torch.bool)
        for t in model.head.readers(0):
            feeds_head |= (model.head.layers[t].mask[:, :model.head.in_features].cpu() != 0).any(0)
        keep[-1] &= feeds_head.view(-1, positions_per_channel).any(1)
        for i in reversed(range(len(convs) - 1)):
            reads = (convs[i + 1].mask.cpu() != 0).flatten(2).any(2)[keep[i + 1]].any(0)
            keep[i] &= reads
        feature_values = values[-1].repeat_interleave(positions_per_channel)
        model.head.select_inputs(keep[-1].repeat_interleave(positions_per_channel),
                                 feature_values)
        for i, position in enumerate(positions):
            in_keep = keep[i - 1] if i > 0 else torch.ones(convs[i].in_channels, dtype=torch.bool)
            model.features[position] = _select_channels(convs[i], keep[i], in_keep)
            batch_norm = model._batch_norm_after(position)
            if batch_norm is not None:
                model.features[position + 1] = _select_batch_norm(batch_norm, keep[i])
        model.head = model.head.compact()
        return model


def _constant_channel_values(model: SparseConvNet) -> list[torch.Tensor]:
    """Per conv: the value each channel carries to the next conv (or the head) when its
    kernels are all dormant: its bias pushed through the following batch norm, ReLU and
    pooling. Only meaningful for such constant channels."""
    values = []
    positions = model._conv_positions() + [len(model.features)]
    with eval_mode(model):
        for position, next_position in zip(positions, positions[1:]):
            conv = model.features[position]
            bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
            size = [max(2, s) for s in conv.kernel_size]
            x = bias.detach().view(1, -1, 1, 1).expand(1, -1, *[4 * s for s in size]).clone()
            for module in model.features[position + 1:next_position]:
                x = module(x)
            values.append(x[0, :, 0, 0].cpu())
    return values


def _select_channels(conv: MaskedConv2d, out_keep: torch.Tensor,
                     in_keep: torch.Tensor) -> MaskedConv2d:
    out_index = torch.nonzero(out_keep).flatten()
    in_index = torch.nonzero(in_keep).flatten()
    if isinstance(conv, PartialAreaConv2d):
        selected = PartialAreaConv2d(len(in_index), len(out_index), conv.kernel_size,
                                     conv.input_size, conv.stride, conv.padding, conv.dilation,
                                     conv.bias is not None,
                                     area_mask=conv.area_mask[out_index][:, in_index])
    else:
        selected = MaskedConv2d(len(in_index), len(out_index), conv.kernel_size, conv.stride,
                                conv.padding, conv.dilation, bias=conv.bias is not None)
    selected.to(conv.weight)
    with torch.no_grad():
        selected.weight.copy_(conv.weight[out_index][:, in_index])
        if conv.bias is not None:
            selected.bias.copy_(conv.bias[out_index])
        selected.set_mask(conv.mask[out_index][:, in_index])
    return selected


def _select_batch_norm(batch_norm: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    index = torch.nonzero(keep).flatten()
    selected = nn.BatchNorm2d(len(index), batch_norm.eps, batch_norm.momentum,
                              batch_norm.affine, batch_norm.track_running_stats)
    selected.to(batch_norm.running_mean if batch_norm.running_mean is not None
                else batch_norm.weight)
    state = {name: (value[index] if value.dim() else value)
             for name, value in batch_norm.state_dict().items()}
    selected.load_state_dict(state)
    return selected
