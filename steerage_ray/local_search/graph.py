"""SCANN's feed-forward network: masked layers over ordered blocks of hidden neurons.

Neurons are ordered input -> hidden -> output. Hidden neurons sit in ordered *blocks*;
layer ``t`` computes block ``t`` (the last layer computes the outputs) from the
concatenation of its *sources*:

- with ``skip_connections=True`` (Schemes A and B, SCANN's general feed-forward graph)
  the sources are the input and every earlier block, so any neuron may feed any later
  hidden neuron and the outputs. Neurons inside one block do not feed each other;
  blocks of size 1 recover SCANN's fully ordered graph, larger blocks trade that last
  bit of generality for one matrix product per block;
- with ``skip_connections=False`` (Scheme C) the only source is the previous block:
  a plain MLP of :class:`MaskedLinear` layers.

Activation index ``0`` is the input and index ``t + 1`` is hidden block ``t``, so layer
``t`` reads activation indices ``sources(t)``. Structural changes (neuron growth,
dead-neuron removal) rebuild the affected layers, so create the optimizer afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.local_search.masked import MaskedLinear
from steerage_ray.models import count_params


class SparseFeedForward(nn.Module):
    """A masked feed-forward network with optional skip connections (see module doc)."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], n_classes: int, *,
                 skip_connections: bool = False) -> None:
        super().__init__()
        if in_features < 1 or n_classes < 1 or any(size < 0 for size in hidden_sizes):
            raise ValueError("SparseFeedForward needs in_features >= 1, n_classes >= 1 and "
                             f"hidden sizes >= 0, got {in_features}, {list(hidden_sizes)}, "
                             f"{n_classes}")
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.skip_connections = bool(skip_connections)
        widths = [self.in_features, *(int(size) for size in hidden_sizes)]
        self.layers = nn.ModuleList()
        for t, out_features in enumerate([*widths[1:], self.n_classes]):
            fan_in = sum(widths[s] for s in self.sources(t))
            self.layers.append(MaskedLinear(fan_in, out_features))

    # -- structure -------------------------------------------------------------------

    @property
    def hidden_sizes(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    @property
    def widths(self) -> list[int]:
        """Sizes of the activations: input, then every hidden block."""
        return [self.in_features, *self.hidden_sizes]

    def sources(self, t: int) -> list[int]:
        """Activation indices concatenated as the input of layer ``t``."""
        return list(range(t + 1)) if self.skip_connections else [t]

    def source_offset(self, t: int, activation: int) -> int:
        """Column where ``activation``'s neurons start in layer ``t``'s input."""
        widths = self.widths
        offset = 0
        for s in self.sources(t):
            if s == activation:
                return offset
            offset += widths[s]
        raise ValueError(f"layer {t} does not read activation {activation}")

    def readers(self, activation: int) -> list[int]:
        """Layers that read activation index ``activation``."""
        return [t for t in range(len(self.layers)) if activation in self.sources(t)]

    # -- forward ---------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)[-1]

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU activations of every hidden block."""
        return self._forward(x)[1:-1]

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        activations = [x]
        for t, layer in enumerate(self.layers):
            sources = self.sources(t)
            inputs = activations[sources[0]] if len(sources) == 1 else torch.cat(
                [activations[s] for s in sources], dim=1)
            z = layer(inputs)
            activations.append(z if t == len(self.layers) - 1 else F.relu(z))
        return activations

    @torch.no_grad()
    def neuron_activity(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Summed |activation| of every hidden neuron over the batch ``x``, per block."""
        return [a.abs().sum(0) for a in self.hidden_activations(x)]

    # -- connections and costs -------------------------------------------------------

    def active_connections(self) -> set[tuple[int, int]]:
        """Active connections as ``(source, target)`` global neuron ids.

        Ids number the inputs first, then the hidden blocks in order, then the outputs.
        """
        starts = np.cumsum([0, *self.widths])
        connections = set()
        for t, layer in enumerate(self.layers):
            column_ids = np.concatenate(
                [np.arange(starts[s], starts[s + 1]) for s in self.sources(t)])
            rows, cols = torch.nonzero(layer.mask, as_tuple=True)
            target_ids = starts[t + 1] + rows.cpu().numpy()
            connections.update(zip(column_ids[cols.cpu().numpy()].tolist(), target_ids.tolist()))
        return connections

    def count_params(self) -> int:
        """Non-zero weights and biases of the network with dead neurons removed."""
        return count_params(self.compact())

    def count_flops(self) -> int:
        """Effective FLOPs per example of the network with dead neurons removed."""
        return sum(layer.effective_flops() for layer in self.compact().layers)

    # -- construction from and to dense layers ---------------------------------------

    @classmethod
    def from_linears(cls, linears: Sequence[nn.Linear], *,
                     skip_connections: bool = False) -> "SparseFeedForward":
        """The MLP made of ``linears`` (ReLU between them), all its weights active.

        Non-zero weights of ``linears`` become active connections (so a pruned dense
        model stays pruned); with skip connections the skip weights start dormant.
        """
        sizes = [layer.out_features for layer in linears]
        for before, after in zip(linears, linears[1:]):
            if before.out_features != after.in_features:
                raise ValueError("linears must chain: a layer with out_features="
                                 f"{before.out_features} feeds in_features={after.in_features}")
        net = cls(linears[0].in_features, sizes[:-1], sizes[-1],
                  skip_connections=skip_connections)
        with torch.no_grad():
            for t, (dense, layer) in enumerate(zip(linears, net.layers)):
                start = net.source_offset(t, t)
                columns = slice(start, start + dense.in_features)
                weight = torch.zeros_like(layer.weight)
                weight[:, columns] = dense.weight
                layer.weight.copy_(weight)
                if dense.bias is None:
                    layer.bias.zero_()
                else:
                    layer.bias.copy_(dense.bias)
                layer.set_mask(weight != 0)
        return net

    # -- neuron growth ---------------------------------------------------------------

    @torch.no_grad()
    def split_neuron(self, block: int, index: int, noise: float = 0.01,
                     generator: torch.Generator | None = None) -> None:
        """Add a child of neuron ``index`` of hidden ``block``.

        The child copies the parent's incoming connections and weights plus Gaussian noise
        of standard deviation ``noise`` x the RMS of the parent's active incoming weights,
        and copies its outgoing connections. Parent and child outgoing weights are both
        halved, so the network function is unchanged up to the noise (exactly unchanged
        with ``noise=0``).
        """
        layer = self.layers[block]
        self._check_neuron(block, index)
        parent_in = layer.weight[index] * layer.mask[index]
        active = layer.mask[index] != 0
        scale = parent_in[active].pow(2).mean().sqrt() if active.any() else parent_in.new_zeros(())
        jitter = torch.randn(parent_in.shape, generator=generator).to(parent_in)
        child_in = parent_in + noise * scale * jitter * layer.mask[index]
        self.layers[block] = _with_row(layer, child_in, layer.mask[index], layer.bias[index])
        for t in self.readers(block + 1):
            reader = self.layers[t]
            column = self.source_offset(t, block + 1) + index
            halved = reader.weight[:, column] * reader.mask[:, column] / 2
            reader.weight[:, column] = halved
            insert_at = self.source_offset(t, block + 1) + self.widths[block + 1] - 1
            self.layers[t] = _with_column(reader, insert_at, halved, reader.mask[:, column])

    @torch.no_grad()
    def add_random_neuron(self, block: int, generator: torch.Generator | None = None) -> None:
        """Add a neuron to hidden ``block`` with random connections.

        Its incoming connections are a random subset (the layer's current density, at
        least one) with He-initialised weights; its outgoing connections are a random
        subset with weights 0, so the network function is unchanged until training.
        """
        if not 0 <= block < len(self.layers) - 1:
            raise ValueError(f"block must be in 0..{len(self.layers) - 2}, got {block}")
        layer = self.layers[block]
        in_mask = _random_mask(layer.in_features, _density(layer), generator).to(layer.mask)
        std = (2.0 / max(int(in_mask.sum()), 1)) ** 0.5
        in_weight = torch.randn(layer.in_features, generator=generator).to(layer.weight) * std
        self.layers[block] = _with_row(layer, in_weight * in_mask, in_mask,
                                       torch.zeros((), dtype=layer.bias.dtype))
        for t in self.readers(block + 1):
            reader = self.layers[t]
            out_mask = _random_mask(reader.out_features, _density(reader), generator)
            insert_at = self.source_offset(t, block + 1) + self.widths[block + 1] - 1
            self.layers[t] = _with_column(reader, insert_at,
                                          torch.zeros(reader.out_features).to(reader.weight),
                                          out_mask.to(reader.mask))

    # -- input changes (NeST adds and removes feature maps in front of the head) ----------

    @torch.no_grad()
    def grow_inputs(self, count: int) -> None:
        """Append ``count`` input features with active zero-weight connections to the
        first layer (dormant skip connections elsewhere); the function is unchanged."""
        for t in self.readers(0):
            layer = self.layers[t]
            for _ in range(count):
                mask = torch.full((layer.out_features,), 1.0 if t == 0 else 0.0)
                layer = _with_column(layer, self.in_features,
                                     torch.zeros(layer.out_features).to(layer.weight),
                                     mask.to(layer.mask))
            self.layers[t] = layer
        self.in_features += count

    @torch.no_grad()
    def select_inputs(self, keep: torch.Tensor, values: torch.Tensor | None = None) -> None:
        """Drop the inputs where ``keep`` is False, folding their constant ``values``
        (default 0) into the readers' biases, so the function is unchanged when the
        dropped inputs always hold those values."""
        keep = keep.to(torch.bool).cpu()
        if keep.shape != (self.in_features,):
            raise ValueError(f"keep must have shape ({self.in_features},), got {tuple(keep.shape)}")
        columns = torch.nonzero(keep).flatten()
        for t in self.readers(0):
            layer = self.layers[t]
            all_columns = torch.arange(layer.in_features)
            kept = torch.cat([columns, all_columns[self.in_features:]])
            selected = MaskedLinear(len(kept), layer.out_features).to(layer.weight)
            bias = layer.bias.clone()
            if values is not None:
                dropped = torch.nonzero(~keep).flatten()
                bias += layer.masked_weight()[:, dropped] @ values[dropped].to(bias)
            selected.weight.copy_(layer.weight[:, kept])
            selected.bias.copy_(bias)
            selected.set_mask(layer.mask[:, kept])
            self.layers[t] = selected
        self.in_features = len(columns)

    def _check_neuron(self, block: int, index: int) -> None:
        if not 0 <= block < len(self.layers) - 1:
            raise ValueError(f"block must be in 0..{len(self.layers) - 2}, got {block}")
        if not 0 <= index < self.hidden_sizes[block]:
            raise ValueError(f"index must be in 0..{self.hidden_sizes[block] - 1} for block "
                             f"{block}, got {index}")

    # -- dead neurons ----------------------------------------------------------------

    @torch.no_grad()
    def compact(self) -> "SparseFeedForward":
        """An equivalent network without dead hidden neurons.

        A neuron with no incoming path from the input outputs a constant: the constant
        times its outgoing weights is folded into the readers' biases and the neuron
        removed. Then neurons that reach no output are removed. The result computes
        exactly the same function (up to float rounding).
        """
        constant = self._input_independent_values()
        keep = [constant[b + 1].isnan() for b in range(len(self.hidden_sizes))]
        biases = [layer.bias.clone() for layer in self.layers]
        for t, layer in enumerate(self.layers):
            for s in self.sources(t):
                if s == 0:
                    continue
                columns = slice(self.source_offset(t, s),
                                self.source_offset(t, s) + self.widths[s])
                values = torch.nan_to_num(constant[s], nan=0.0)
                biases[t] += layer.masked_weight()[:, columns] @ values
        for b in reversed(range(len(self.hidden_sizes))):
            keep[b] &= self._feeds_kept_neuron(b, keep)
        return self._select(keep, biases)

    def _input_independent_values(self) -> list[torch.Tensor]:
        """Per activation: the constant value of neurons that ignore the input, else NaN."""
        values = [torch.full((self.in_features,), float("nan"))]
        for t, layer in enumerate(self.layers[:-1]):
            weight = layer.masked_weight().detach().cpu()
            depends = torch.zeros(layer.out_features, dtype=torch.bool)
            total = layer.bias.detach().cpu().clone()
            for s in self.sources(t):
                columns = slice(self.source_offset(t, s), self.source_offset(t, s) + self.widths[s])
                source_varies = values[s].isnan()
                block = weight[:, columns]
                depends |= (block[:, source_varies] != 0).any(1)
                total += block[:, ~source_varies] @ values[s][~source_varies]
            values.append(torch.where(depends, torch.nan, F.relu(total)))
        return [v.to(self.layers[0].weight) for v in values]

    def _feeds_kept_neuron(self, block: int, keep: list[torch.Tensor]) -> torch.Tensor:
        feeds = torch.zeros(self.hidden_sizes[block], dtype=torch.bool)
        for t in self.readers(block + 1):
            offset = self.source_offset(t, block + 1)
            mask = self.layers[t].mask[:, offset:offset + self.hidden_sizes[block]].cpu() != 0
            target_kept = keep[t] if t < len(keep) else torch.ones(mask.shape[0], dtype=torch.bool)
            feeds |= mask[target_kept.cpu()].any(0)
        return feeds.to(keep[block].device)

    def _select(self, keep: list[torch.Tensor], biases: list[torch.Tensor]) -> "SparseFeedForward":
        kept_indices = [torch.nonzero(k.cpu()).flatten() for k in keep]
        net = SparseFeedForward(self.in_features, [len(k) for k in kept_indices],
                                self.n_classes, skip_connections=self.skip_connections)
        net.to(self.layers[0].weight)
        widths = self.widths
        for t, (old, new) in enumerate(zip(self.layers, net.layers)):
            columns = torch.cat([
                self.source_offset(t, s)
                + (torch.arange(widths[s]) if s == 0 else kept_indices[s - 1])
                for s in self.sources(t)])
            rows = kept_indices[t] if t < len(kept_indices) else torch.arange(self.n_classes)
            with torch.no_grad():
                new.weight.copy_(old.weight[rows][:, columns])
                new.bias.copy_(biases[t][rows])
                new.set_mask(old.mask[rows][:, columns])
        return net


def _density(layer: MaskedLinear) -> float:
    return float(layer.mask.mean()) if layer.mask.numel() else 1.0


def _random_mask(size: int, density: float, generator: torch.Generator | None) -> torch.Tensor:
    """A 0/1 vector with ``round(density * size)`` (at least one) random ones."""
    count = min(size, max(1, round(density * size)))
    mask = torch.zeros(size)
    mask[torch.randperm(size, generator=generator)[:count]] = 1.0
    return mask


def _with_row(layer: MaskedLinear, weight_row: torch.Tensor, mask_row: torch.Tensor,
              bias: torch.Tensor) -> MaskedLinear:
    """A copy of ``layer`` with one more output neuron (appended last)."""
    grown = MaskedLinear(layer.in_features, layer.out_features + 1).to(layer.weight)
    with torch.no_grad():
        grown.weight.copy_(torch.cat([layer.weight, weight_row[None]]))
        grown.bias.copy_(torch.cat([layer.bias, bias.reshape(1).to(layer.bias)]))
        grown.set_mask(torch.cat([layer.mask, mask_row[None]]))
    return grown


def _with_column(layer: MaskedLinear, position: int, weight_column: torch.Tensor,
                 mask_column: torch.Tensor) -> MaskedLinear:
    """A copy of ``layer`` with one more input, inserted at column ``position``."""
    grown = MaskedLinear(layer.in_features + 1, layer.out_features).to(layer.weight)

    def insert(matrix: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        return torch.cat([matrix[:, :position], column[:, None], matrix[:, position:]], dim=1)

    with torch.no_grad():
        grown.weight.copy_(insert(layer.weight, weight_column))
        grown.bias.copy_(layer.bias)
        grown.set_mask(insert(layer.mask, mask_column))
    return grown
