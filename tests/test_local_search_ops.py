"""Masked layers and the connection operations of local search (pure torch, no Ray)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.local_search import (
    MaskedConv2d,
    MaskedLinear,
    PartialAreaConv2d,
    SparseFeedForward,
    apply_masks,
    effective_flops,
    grow_connections,
    prune_connections,
)
from steerage_ray.models import build_ffnn, build_lenet, count_flops


def _random_masks(net: nn.Module, density: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, (MaskedLinear, MaskedConv2d)):
            module.set_mask(torch.rand(module.mask.shape, generator=generator) < density)


def _dense_copy(net: SparseFeedForward) -> list[nn.Linear]:
    """Plain nn.Linear layers holding the masked weights (the reference computation)."""
    layers = []
    for layer in net.layers:
        dense = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            dense.weight.copy_(layer.masked_weight())
            dense.bias.copy_(layer.bias)
        layers.append(dense)
    return layers


def _dense_forward(net: SparseFeedForward, layers: list[nn.Linear],
                   x: torch.Tensor) -> torch.Tensor:
    activations = [x]
    for t, layer in enumerate(layers):
        z = layer(torch.cat([activations[s] for s in net.sources(t)], dim=1))
        activations.append(z if t == len(layers) - 1 else F.relu(z))
    return activations[-1]


# -- masked layers ---------------------------------------------------------------------

def test_masked_weights_stay_exactly_zero_under_sgd_momentum_and_weight_decay():
    torch.manual_seed(0)
    model = nn.Sequential(MaskedConv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          MaskedLinear(4 * 6 * 6, 5))
    x, y = torch.randn(32, 1, 6, 6), torch.randint(0, 5, (32,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)

    def steps(n: int, reapply: bool) -> None:
        for _ in range(n):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            if reapply:
                apply_masks(model)

    steps(3, reapply=True)  # momentum buffers are now non-zero everywhere
    _random_masks(model, 0.5, seed=1)
    unprotected = copy.deepcopy(model)
    steps(5, reapply=True)
    for layer in (model[0], model[3]):
        dormant = layer.mask == 0
        assert dormant.any()
        assert torch.equal(layer.weight[dormant], torch.zeros(int(dormant.sum())))
        assert torch.equal(layer.weight.grad[dormant], torch.zeros(int(dormant.sum())))
        assert (layer.weight[~dormant] != 0).all()

    # the same steps without re-applying the masks move dormant weights off zero
    model, optimizer_state = unprotected, optimizer.state_dict()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    optimizer.load_state_dict(optimizer_state)
    steps(1, reapply=False)
    assert (model[3].weight[model[3].mask == 0] != 0).any()


def test_masked_layers_train_through_train_model_with_masks_kept():
    from steerage_ray.data import load_dataset
    from steerage_ray.training import TrainSettings, train_model

    torch.manual_seed(0)
    net = SparseFeedForward(64, [16], 10)
    _random_masks(net, 0.3, seed=0)
    train_model(net, load_dataset("digits"), TrainSettings(epochs=2, optimizer="sgd", lr=0.05,
                                                momentum=0.9, weight_decay=0.01),
                after_step=apply_masks)
    for layer in net.layers:
        assert torch.count_nonzero(layer.weight[layer.mask == 0]) == 0


@pytest.mark.parametrize("input_size, kernel, stride, padding", [
    ((6, 6), 3, 1, 1),     # 36 output positions: unfolded path
    ((4, 5), 3, 1, 0),     # non-square, no padding
    ((14, 14), 5, 1, 2),   # 196 positions: grouped-conv path
    ((15, 15), 3, 2, 1),   # stride 2
])
def test_partial_area_conv_with_full_area_equals_conv2d(input_size, kernel, stride, padding):
    torch.manual_seed(0)
    reference = nn.Conv2d(3, 5, kernel, stride=stride, padding=padding)
    partial = PartialAreaConv2d.from_masked(MaskedConv2d.from_dense(reference), input_size)
    x = torch.randn(7, 3, *input_size)
    torch.testing.assert_close(partial(x), reference(x), rtol=1e-5, atol=1e-5)
    assert partial.unfolded == (partial.area_mask[0, 0].numel() <= 64)


def test_partial_area_conv_drops_exactly_the_masked_pair_terms():
    torch.manual_seed(0)
    conv = PartialAreaConv2d(2, 3, 3, (5, 5), padding=1)
    area = (torch.rand(conv.area_mask.shape) > 0.5).float()
    conv.area_mask.copy_(area)
    x = torch.randn(4, 2, 5, 5)
    expected = conv.bias.view(1, -1, 1, 1).expand(4, 3, 5, 5).clone()
    for n in range(3):
        for m in range(2):
            term = F.conv2d(x[:, m:m + 1], conv.weight[n:n + 1, m:m + 1], padding=1)[:, 0]
            expected[:, n] += term * area[n, m]
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    active_per_pair = conv.mask.flatten(2).sum(-1)
    assert conv.effective_flops() == 2 * int((active_per_pair * area.flatten(2).sum(-1)).sum())


def test_effective_flops_of_fully_active_models_match_count_flops():
    ffnn = SparseFeedForward.from_linears(
        [m for m in build_ffnn(20, [30, 15], 4) if isinstance(m, nn.Linear)])
    assert effective_flops(ffnn, (20,)) == count_flops(build_ffnn(20, [30, 15], 4), (20,))
    lenet = build_lenet(1, 8, 10, kernel_size=3)
    masked = copy.deepcopy(lenet)
    masked.features[0] = MaskedConv2d.from_dense(lenet.features[0])
    masked.features[3] = MaskedConv2d.from_dense(lenet.features[3])
    assert effective_flops(masked, (1, 8, 8)) == count_flops(lenet, (1, 8, 8))
    _random_masks(masked, 0.5, seed=0)
    assert effective_flops(masked, (1, 8, 8)) < count_flops(lenet, (1, 8, 8))


def test_mask_of_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="mask must have shape"):
        MaskedLinear(3, 2).set_mask(torch.ones(3, 2))
    with pytest.raises(ValueError, match="area_mask must have shape"):
        PartialAreaConv2d(1, 2, 3, (5, 5), area_mask=torch.ones(2, 1, 5, 5))


# -- connection growth ---------------------------------------------------------------------

@pytest.mark.parametrize("skip", [False, True])
def test_gradient_growth_activates_exactly_the_top_fraction_by_gradient(skip):
    torch.manual_seed(0)
    net = SparseFeedForward(12, [10, 8], 4, skip_connections=skip)
    _random_masks(net, 0.3, seed=0)
    X = np.random.default_rng(0).normal(size=(96, 12)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 4, size=96)

    # reference: mean-loss gradient of a plain dense copy over all 96 examples
    dense = _dense_copy(net)
    F.cross_entropy(_dense_forward(net, dense, torch.as_tensor(X)), torch.as_tensor(y)).backward()
    scores = torch.cat([d.weight.grad.abs().flatten()[l.mask.flatten() == 0]
                        for d, l in zip(dense, net.layers)])
    dormant_ids = torch.cat([
        torch.nonzero(l.mask.flatten() == 0).flatten() + sum(m.mask.numel() for m in net.layers[:i])
        for i, l in enumerate(net.layers)])
    n_dormant = len(dormant_ids)
    before = [l.mask.clone() for l in net.layers]
    x = torch.as_tensor(X)
    output_before = net(x)

    grown = grow_connections(net, X, y, 0.1, batches=3, batch_size=32)

    assert grown == round(0.1 * n_dormant)
    expected = set(dormant_ids[torch.topk(scores, grown).indices].tolist())
    new = torch.cat([(l.mask - b).flatten() for l, b in zip(net.layers, before)])
    assert set(torch.nonzero(new).flatten().tolist()) == expected
    assert (new >= 0).all()
    torch.testing.assert_close(net(x), output_before)  # new weights start at 0


def test_random_growth_picks_only_dormant_connections_and_is_seeded():
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = SparseFeedForward(10, [6], 3)
        _random_masks(net, 0.4, seed=0)
        before = [l.mask.clone() for l in net.layers]
        n_dormant = sum(int((b == 0).sum()) for b in before)
        count = grow_connections(net, None, None, 0.25, mode="random", seed=3)
        assert count == round(0.25 * n_dormant)
        changed = sum(int((l.mask != b).sum()) for l, b in zip(net.layers, before))
        assert changed == count
        assert all(((l.mask - b) >= 0).all() for l, b in zip(net.layers, before))
        nets.append(net)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(nets[0].layers, nets[1].layers))


# -- connection pruning ----------------------------------------------------------------------

def test_pruning_removes_exactly_the_fraction_of_smallest_weights_globally():
    torch.manual_seed(0)
    net = SparseFeedForward(20, [15, 10], 5, skip_connections=True)
    _random_masks(net, 0.6, seed=2)
    before = [l.mask.clone() for l in net.layers]
    weights_before = [l.weight.detach().clone() for l in net.layers]
    n_active = sum(int(b.sum()) for b in before)

    pruned = prune_connections(net, 0.35)

    assert pruned == round(0.35 * n_active)
    removed = torch.cat([w[(b != 0) & (l.mask == 0)].abs() for w, b, l in
                         zip(weights_before, before, net.layers)])
    kept = torch.cat([l.weight[l.mask != 0].abs() for l in net.layers])
    assert len(removed) == pruned
    assert len(kept) == n_active - pruned
    assert removed.max() <= kept.min()  # one global threshold over all layers
    assert all(((l.mask - b) <= 0).all() for l, b in zip(net.layers, before))


def test_pruning_count_is_exact_with_tied_magnitudes():
    layer = MaskedLinear(10, 10)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -0.5, 1.0, 2.0, -1.0] * 20).view(10, 10))
    pruned = prune_connections(nn.Sequential(layer), 0.3)  # 40 weights tie at |w| = 0.5
    assert pruned == 30
    assert int(layer.mask.sum()) == 70
    assert (layer.weight[layer.mask == 0].abs() == 0).all()
    assert int((layer.weight.abs() == 0.5).sum()) == 10


def test_large_weight_pruning_removes_the_largest():
    layer = MaskedLinear(4, 5)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(1, 21, dtype=torch.float32).view(5, 4))
    prune_connections(nn.Sequential(layer), 0.25, largest=True)
    assert sorted(layer.weight[layer.weight != 0].tolist()) == list(range(1, 16))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, True, "0.5"])
def test_ratios_outside_zero_one_are_rejected(bad):
    net = SparseFeedForward(4, [3], 2)
    with pytest.raises(ValueError, match="growth_ratio must be a number strictly between 0 and 1"):
        grow_connections(net, np.zeros((4, 4), np.float32), np.zeros(4, int), bad)
    with pytest.raises(ValueError, match="pruning_ratio must be a number strictly between 0 and 1"):
        prune_connections(net, bad)


def test_a_dense_model_exports_as_it_is():
    from steerage_ray.local_search.export import export_model
    from steerage_ray.models import build_ffnn

    model = build_ffnn(8, [16], 3).eval()
    exported = export_model(model, (8,), quant_bits=32, onnx=False)
    x = torch.randn(4, 8)
    torch.testing.assert_close(exported.torchscript(x), model(x))
    assert exported.module is not model


def test_growth_can_be_a_fraction_of_the_active_connections():
    torch.manual_seed(0)
    net = SparseFeedForward(10, [6], 3)
    _random_masks(net, 0.1, seed=0)
    active = sum(l.active_weights() for l in net.layers)
    dormant = sum(int((l.mask == 0).sum()) for l in net.layers)
    count = grow_connections(net, None, None, 0.5, mode="random", of="active", seed=1)
    assert count == round(0.5 * active) < round(0.5 * dormant)
    assert sum(l.active_weights() for l in net.layers) == active + count
    # never more than every dormant connection
    assert grow_connections(net, None, None, 0.99, mode="random", of="active") <= dormant - count
    with pytest.raises(ValueError, match="fraction of one of"):
        grow_connections(net, None, None, 0.5, mode="random", of="all")
