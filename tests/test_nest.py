"""NeST on LeNet-style CNNs: feature-map growth, conv pruning, partial-area convolution,
dead-channel removal, the NeST scheme and the CNN export."""

import copy

import pytest
import torch
from torch import nn

from steerage_ray.local_search import (
    MaskedConv2d,
    NestOptions,
    PartialAreaConv2d,
    SparseConvNet,
    SparseFeedForward,
    effective_flops,
    export_model,
    grow_feature_map,
    partial_area,
    prune_conv,
    run_nest,
)
from steerage_ray.local_search.nest import pair_responses
from steerage_ray.models import build_lenet, count_flops, count_params
from steerage_ray.training import TrainSettings, train_model


@pytest.fixture(scope="module")
def images(digits_images):
    return digits_images


@pytest.fixture(scope="module")
def trained_lenet(images):
    torch.manual_seed(0)
    lenet = build_lenet(1, 8, 10, conv_filters=(6, 16), kernel_size=3, fc_sizes=(32, 16))
    train_model(lenet, images, TrainSettings(epochs=5, batch_size=64, lr=0.005))
    return lenet


@pytest.fixture
def net(trained_lenet):
    return SparseConvNet.from_lenet(trained_lenet, (1, 8, 8))


def _with_batch_norm(seed=0):
    torch.manual_seed(seed)
    features = nn.Sequential(
        MaskedConv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        MaskedConv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2))
    model = SparseConvNet(features, SparseFeedForward(6 * 2 * 2, [12], 10), (1, 8, 8))
    model.train()
    with torch.no_grad():
        model(torch.randn(64, 1, 8, 8))  # non-trivial running statistics
    return model.eval()


def test_from_lenet_keeps_the_function_and_the_costs(trained_lenet, net, images):
    x = torch.as_tensor(images.X_test[:64])
    torch.testing.assert_close(net(x), trained_lenet(x))
    assert count_params(net.compact()) == count_params(trained_lenet)
    assert effective_flops(net, (1, 8, 8)) == count_flops(trained_lenet, (1, 8, 8))


def test_feature_map_growth_keeps_the_function_and_keeps_the_best_candidate(net, images):
    x = torch.as_tensor(images.X_train[:128])
    y = images.y_train[:128]
    before = net(x)
    generator = torch.Generator().manual_seed(0)
    losses = grow_feature_map(net, 0, x, y, candidates=6, generator=generator)
    assert [c.out_channels for c in net.conv_layers()] == [7, 16]
    assert net.conv_layers()[1].in_channels == 7
    torch.testing.assert_close(net(x), before)  # zero read-out: unchanged until training
    assert len(set(losses.tolist())) == 6       # candidates are told apart
    kernels = torch.randn((6, 1, 3, 3), generator=torch.Generator().manual_seed(0)) * (2 / 9) ** 0.5
    assert torch.equal(net.conv_layers()[0].weight[-1], kernels[int(losses.argmin())])

    in_features = net.head.in_features
    grow_feature_map(net, 1, x, y, candidates=3, generator=generator)
    assert net.conv_layers()[1].out_channels == 17
    assert net.head.in_features == in_features + 4  # one more 2x2 map to flatten
    torch.testing.assert_close(net(x), before)


def test_feature_map_growth_extends_a_following_batch_norm():
    model = _with_batch_norm()
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    before = model(x)
    grow_feature_map(model, 0, x, y, candidates=2)
    assert model.features[1].num_features == 5
    assert model.features[1].running_var[-1] == 1 and model.features[1].weight[-1] == 1
    torch.testing.assert_close(model(x), before)


def test_conv_pruning_is_exact_and_folds_the_batch_norm_scale():
    model = _with_batch_norm()
    with torch.no_grad():
        model.features[1].weight[0] = 1e-4   # channel 0 of conv 1 barely matters
        model.features[0].weight[0] = 5.0    # although its raw weights are the largest
    convs = model.conv_layers()
    active = sum(int(c.mask.sum()) for c in convs)
    pruned = prune_conv(model, 0.1)
    assert pruned == round(0.1 * active)
    assert int(convs[0].mask[0].sum()) == 0  # pruned first, thanks to the folded scale


@pytest.mark.parametrize("ratios", [(0.1, 0.3, 0.5, 0.7, 0.9)])
def test_partial_area_flops_fall_monotonically_with_the_ratio(net, images, ratios):
    flops = [effective_flops(net, (1, 8, 8))]
    params = count_params(net.compact())
    for ratio in ratios:
        model = copy.deepcopy(net)
        partial_area(model, images.X_train[:200], ratio)
        flops.append(effective_flops(model, (1, 8, 8)))
        assert count_params(model.compact()) <= params  # kernels stay unless a pair dies
    assert all(a > b for a, b in zip(flops, flops[1:])), flops


def test_partial_area_masks_the_lowest_response_positions_of_each_pair(net, images):
    X = images.X_train[:100]
    responses = pair_responses(net, X)
    partial_area(net, X, 0.25)
    for conv, response in zip(net.conv_layers(), responses):
        assert isinstance(conv, PartialAreaConv2d)
        area = conv.area_mask.flatten(2)
        positions = area.shape[-1]
        assert (area.sum(-1) == positions - round(0.25 * positions)).all()
        flat = response.flatten(2)
        masked_max = torch.where(area == 0, flat, torch.full_like(flat, -1.0)).amax(-1)
        kept_min = torch.where(area == 1, flat, torch.full_like(flat, float("inf"))).amin(-1)
        assert (masked_max <= kept_min).all()


def test_compact_drops_dead_channels_without_changing_predictions(net, images):
    with torch.no_grad():
        first, second = net.conv_layers()
        first.mask[2] = 0                 # conv1 channel 2: no kernels, relu(bias) constant
        first.bias[2] = -1.0              # ... which is 0, so it can go
        second.mask[:, 4] = 0             # conv1 channel 4: read by nobody
        second.mask[7] = 0                # conv2 channel 7: constant, folded into the head
        second.bias[7] = 0.5
        net.head.layers[0].mask[:, 4 * 3:4 * 4] = 0  # conv2 channel 3: head ignores it
        for conv in (first, second, net.head.layers[0]):
            conv.apply_mask()
    x = torch.as_tensor(images.X_test)
    compact = net.compact()
    assert [c.out_channels for c in compact.conv_layers()] == [4, 14]
    torch.testing.assert_close(compact(x), net(x), rtol=1e-5, atol=1e-5)


def test_nest_scheme_cuts_flops_and_records_every_step(net, images):
    options = NestOptions(schedule=("grow_feature_maps", "partial_area", "prune_connections"),
                          area_ratio=0.5, candidate_kernels=2)
    result = run_nest(net, images, iterations=3, pretrained=True, options=options,
                      settings=TrainSettings(epochs=2, batch_size=64, lr=0.003))
    history = result.history
    assert list(history["operation"]) == ["start", "grow_feature_maps", "partial_area",
                                          "prune_connections"]
    assert history.loc[1, "flops"] > history.loc[0, "flops"]
    assert history.loc[2, "flops"] < 0.75 * history.loc[1, "flops"]
    assert history.loc[3, "params"] < history.loc[2, "params"]
    assert result.scheme == "nest"
    assert [c.out_channels for c in result.models[1].conv_layers()] == [7, 17]


def test_default_nest_schedule():
    assert NestOptions().operations(6) == [
        "grow_feature_maps", "grow_conv_connections", "prune_hard", "partial_area",
        "prune_conv", "prune_connections"]


@pytest.mark.parametrize("field, value", [("area_ratio", 1.0), ("conv_pruning_ratio", 0),
                                          ("conv_growth_ratio", 3)])
def test_bad_nest_ratios_are_rejected(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a number strictly between 0 and 1"):
        NestOptions(**{field: value})


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load's deprecation notice
def test_cnn_export_matches_the_masked_model(net, images, tmp_path):
    x = torch.as_tensor(images.X_test)
    plain = export_model(net, (1, 8, 8), onnx=False)
    assert all(type(m).__module__.startswith("torch.nn") for m in plain.module.modules())
    torch.testing.assert_close(plain.module(x), net(x), rtol=1e-5, atol=1e-5)

    prune_conv(net, 0.3)
    partial_area(net, images.X_train[:100], 0.4)
    expected = net(x)
    exported = export_model(net, (1, 8, 8), quant_bits=8)
    torch.testing.assert_close(exported.module(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(exported.torchscript(x), expected, rtol=1e-5, atol=1e-5)
    files = exported.save(tmp_path)
    torch.testing.assert_close(torch.jit.load(str(files["torchscript"]))(x), expected,
                               rtol=1e-5, atol=1e-5)
    assert (exported.quantized(x).argmax(1) == expected.argmax(1)).float().mean() > 0.95


def test_incremental_partial_area_keeps_masked_positions_and_masks_more(net, images):
    X = images.X_train[:100]
    partial_area(net, X, 0.25)
    before = [conv.area_mask.clone() for conv in net.conv_layers()]
    flops = effective_flops(net, (1, 8, 8))
    partial_area(net, X, 0.5, incremental=True)
    for conv, old in zip(net.conv_layers(), before):
        area, old = conv.area_mask.flatten(2), old.flatten(2)
        assert (area <= old).all()  # nothing masked comes back
        remaining = old.sum(-1)
        assert (area.sum(-1) == remaining - torch.round(0.5 * remaining)).all()
    assert effective_flops(net, (1, 8, 8)) < 0.6 * flops
