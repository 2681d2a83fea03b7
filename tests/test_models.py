"""Model builders, quantization and complexity counting (no Ray, no training)."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from steerage_ray.models import (
    BasicBlock,
    Bottleneck,
    build_ffnn,
    build_lenet,
    build_model,
    build_resnet,
    count_dense_params,
    count_flops,
    count_macs,
    count_params,
    lenet5_baseline,
    quantize_model,
    resnet18_cifar,
)
from steerage_ray.space import ffnn_space, lenet_space, resnet_depth, resnet_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def corner(space, top: bool, **changes) -> dict:
    """The preset's min (``top=False``) or max corner in every dimension, plus changes."""
    config = {**space.decode(np.full(space.n_dims, 1e9 if top else -1e9)), **changes}
    assert space.contains(config)
    return config


def forward(model: nn.Module, input_shape: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(batch, *input_shape))


# --- FFNN ------------------------------------------------------------------------------


FFNN_CORNERS = {  # (num_layers, neurons): the preset's corners of depth x width
    (1, 50): corner(ffnn_space(64), top=False),
    (6, 600): corner(ffnn_space(64), top=True),
    (1, 600): corner(ffnn_space(64), top=False, neurons_1=600),
    (6, 50): corner(ffnn_space(64), top=True, **{f"neurons_{i}": 50 for i in range(1, 7)}),
}


@pytest.mark.parametrize("num_layers, neurons", list(FFNN_CORNERS))
def test_ffnn_builds_and_runs_at_the_extremes_of_its_space(num_layers, neurons):
    model = build_model("ffnn", FFNN_CORNERS[num_layers, neurons], (64,), 10)
    out = forward(model, (64,))
    assert out.shape == (2, 10)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [neurons] * num_layers + [10]
    expected = (64 * neurons + neurons + (num_layers - 1) * (neurons * neurons + neurons)
                + neurons * 10 + 10)
    assert count_dense_params(model) == expected


def test_ffnn_has_no_activation_after_the_output_layer():
    model = build_ffnn(4, [3], 2)
    assert isinstance(model[-1], nn.Linear)
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]


# --- LeNet -----------------------------------------------------------------------------


def lenet_config(image_size: int, kernel: int, top: bool) -> dict:
    return corner(lenet_space(image_size), top, kernel_size=kernel)


@pytest.mark.parametrize("image_size, kernel, top",
                         list(itertools.product((8, 14, 21, 28), (3, 5), (False, True))))
def test_lenet_builds_and_runs_at_the_extremes_of_its_space(image_size, kernel, top):
    config = lenet_config(image_size, kernel, top)
    model = build_model("lenet", config, (1, image_size, image_size), 10)
    assert forward(model, (1, image_size, image_size)).shape == (2, 10)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [config["conv1_filters"], config["conv2_filters"]]
    assert all(c.kernel_size == (kernel, kernel) for c in convs)
    # 'same' padding + two floor poolings: the classifier input is computed from the size
    side = image_size // 2 // 2
    assert model.classifier[0].in_features == config["conv2_filters"] * side * side
    assert [m.out_features for m in model.classifier if isinstance(m, nn.Linear)] == [
        config["fc1"], config["fc2"], config["fc3"], 10]


def test_lenet_pools_follow_the_config():
    model = build_lenet(1, 14, 10, pools=("avg", "max"))
    pools = [type(m) for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert pools == [nn.AvgPool2d, nn.MaxPool2d]


def test_lenet5_baseline_has_the_published_61706_parameters():
    model = lenet5_baseline()
    assert count_dense_params(model) == 61_706
    assert model.classifier[0].in_features == 400  # 16 x 5 x 5, as in LeCun et al.
    assert forward(model, (1, 28, 28)).shape == (2, 10)


def test_lenet_rejects_an_image_too_small_for_valid_padding():
    with pytest.raises(ValueError, match="image_size"):
        build_lenet(1, 8, 10, padding=(0, 0))


# --- ResNet ----------------------------------------------------------------------------


@pytest.mark.parametrize("image_size, blocks, top", [
    (24, 2, False),
    (32, 2, False),
    (24, 6, False),
    (32, 6, False),
    (32, 2, True),   # full width, shallowest
    (24, 6, True),   # full width, deepest (bottleneck)
])
def test_resnet_builds_and_runs_at_the_extremes_of_its_space(image_size, blocks, top):
    blocks_config = {f"blocks_{i}": blocks for i in range(1, 5)}
    config = corner(resnet_space(), top, image_size=image_size, **blocks_config)
    model = build_model("resnet", config, (3, image_size, image_size), 10)
    assert forward(model, (3, image_size, image_size)).shape == (2, 10)
    assert model.stem[0].out_channels == config["conv1_filters"]
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == [blocks] * 4
    # the paper: basic blocks below 50 layers, bottleneck blocks from 50 (all-6 = depth 50)
    expected_block = Bottleneck if resnet_depth(config) >= 50 else BasicBlock
    assert expected_block is (Bottleneck if blocks == 6 else BasicBlock)
    assert all(isinstance(block, expected_block) for stage in stages for block in stage)
    widths = [stage[0].conv2.out_channels for stage in stages]
    assert widths == [config[f"conv{i}_filters"] for i in range(2, 6)]
    pool = nn.AdaptiveMaxPool2d if config["pooling"] == "max" else nn.AdaptiveAvgPool2d
    assert isinstance(model.pool, pool)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == config["fc_layers"]


def test_resnet_block_type_can_be_forced():
    model = build_resnet(3, 24, 10, 8, (8, 8, 8, 8), (2, 2, 2, 2), bottleneck=True)
    assert isinstance(model.layer1[0], Bottleneck)
    assert model.fc.in_features == 8 * Bottleneck.expansion


def test_resnet_uses_projection_shortcuts_only_where_the_shape_changes():
    model = build_resnet(3, 32, 10, 16, (16, 32, 64, 128), (2, 2, 2, 2))
    assert isinstance(model.layer1[0].shortcut, nn.Identity)   # 16 -> 16, stride 1
    assert isinstance(model.layer2[0].shortcut, nn.Sequential)  # 16 -> 32, stride 2
    assert isinstance(model.layer2[1].shortcut, nn.Identity)


def test_resnet18_cifar_matches_the_published_parameter_count():
    params = count_dense_params(resnet18_cifar())
    assert abs(params - 11_173_962) / 11_173_962 < 0.02
    assert params == 11_173_962


# --- build_model errors and seeding ----------------------------------------------------


def test_build_model_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="family"):
        build_model("transformer", corner(ffnn_space(), top=False), (64,), 10)


@pytest.mark.parametrize("family, config, input_shape, missing", [
    ("ffnn", {"num_layers": 3, "neurons_1": 50, "neurons_2": 50, "neurons_3": None}, (8,),
     "neurons_3"),
    ("lenet", {k: v for k, v in lenet_config(14, 5, False).items() if k != "fc2"}, (1, 14, 14),
     "fc2"),
    ("resnet", {k: v for k, v in corner(resnet_space(), top=False).items() if k != "blocks_3"},
     (3, 24, 24), "blocks_3"),
])
def test_build_model_names_a_missing_config_key(family, config, input_shape, missing):
    with pytest.raises(ValueError, match=missing):
        build_model(family, config, input_shape, 10)


@pytest.mark.parametrize("family, config, input_shape", [
    ("ffnn", corner(ffnn_space(), top=False), (1, 8, 8)),
    ("lenet", lenet_config(8, 3, False), (64,)),
    ("resnet", corner(resnet_space(), top=False), (24, 24)),
])
def test_build_model_rejects_an_input_shape_of_the_wrong_rank(family, config, input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_model(family, config, input_shape, 10)


def test_build_model_rejects_data_not_prepared_for_the_config_image_size():
    with pytest.raises(ValueError, match="image_size"):
        build_model("lenet", lenet_config(14, 5, False), (1, 28, 28), 10)


def test_build_model_rejects_bad_values_naming_them():
    with pytest.raises(ValueError, match="pool1"):
        build_model("lenet", {**lenet_config(14, 5, False), "pool1": "median"}, (1, 14, 14), 10)
    with pytest.raises(ValueError, match="neurons_1"):
        build_model("ffnn", {**corner(ffnn_space(), top=False), "neurons_1": 12.5}, (8,), 10)


def test_build_model_seed_makes_weights_reproducible_without_touching_the_global_rng():
    config = corner(ffnn_space(), top=False)
    state = torch.random.get_rng_state()
    first = build_model("ffnn", config, (8,), 3, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = build_model("ffnn", config, (8,), 3, seed=7)
    other = build_model("ffnn", config, (8,), 3, seed=8)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(first[0].weight, other[0].weight)


# --- quantization ----------------------------------------------------------------------


def weight_and_output_errors(model: nn.Module, bits: int, x: torch.Tensor) -> tuple[float, float]:
    quantized = quantize_model(model, bits)
    weight_error = max(
        (p - q).abs().max().item()
        for p, q in zip(model.parameters(), quantized.parameters())
    )
    with torch.no_grad():
        output_error = (model(x) - quantized(x)).abs().max().item()
    return weight_error, output_error


@pytest.mark.parametrize("model, input_shape", [
    (build_ffnn(20, [64, 32], 5), (20,)),
    (build_lenet(1, 14, 10, conv_filters=(6, 16), kernel_size=3, fc_sizes=(60, 40)), (1, 14, 14)),
])
def test_quantization_error_shrinks_with_more_bits_and_32_is_exact(model, input_shape):
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(16, *input_shape)
    errors = [weight_and_output_errors(model, bits, x) for bits in (4, 8, 16, 32)]
    weight_errors, output_errors = zip(*errors)
    assert weight_errors[0] > weight_errors[1] > weight_errors[2] > 0
    assert output_errors[0] > output_errors[1] > output_errors[2] > 0
    assert weight_errors[3] == 0 and output_errors[3] == 0


def test_quantization_uses_at_most_2_to_the_bits_levels_per_output_channel():
    model = build_ffnn(50, [40], 3)
    quantized = quantize_model(model, 4)
    for row in quantized[0].weight:
        assert len(torch.unique(row)) <= 2 ** 4 - 1  # symmetric grid: -7 .. 7
    assert len(torch.unique(quantized[0].bias)) <= 15


def test_quantization_keeps_zeros_and_leaves_the_original_alone():
    model = build_ffnn(30, [40, 20], 4)
    with torch.no_grad():
        mask = torch.rand_like(model[0].weight) < 0.5
        model[0].weight[mask] = 0.0
        model[2].weight[3] = 0.0  # an entirely pruned neuron
    original = model[0].weight.clone()
    for bits in (4, 8, 16):
        quantized = quantize_model(model, bits)
        assert torch.all(quantized[0].weight[mask] == 0)
        assert torch.all(quantized[2].weight[3] == 0)
        assert count_params(quantized) <= count_params(model)
        assert torch.isfinite(quantized[2].weight).all()
    assert torch.equal(model[0].weight, original)


@pytest.mark.parametrize("bits", [2, 12, 64, "8"])
def test_quantization_rejects_unsupported_bit_widths(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize_model(build_ffnn(4, [3], 2), bits)


def test_quantization_reaches_resnet_convolutions_but_not_batch_norm():
    model = build_resnet(3, 24, 10, 8, (8, 16, 16, 16), (2, 2, 2, 2))
    quantized = quantize_model(model, 4)
    assert not torch.equal(quantized.stem[0].weight, model.stem[0].weight)
    assert torch.equal(quantized.stem[1].weight, model.stem[1].weight)


# --- complexity ------------------------------------------------------------------------


def test_count_params_ignores_zero_weights():
    model = build_ffnn(10, [8], 3)
    dense = count_dense_params(model)
    assert dense == 10 * 8 + 8 + 8 * 3 + 3
    assert count_params(model) == dense
    with torch.no_grad():
        model[0].weight[:, :5] = 0.0  # 40 weights pruned
    assert count_params(model) == dense - 40
    assert count_dense_params(model) == dense


def test_count_params_skips_frozen_parameters():
    model = build_ffnn(10, [8], 3)
    model[0].weight.requires_grad_(False)
    assert count_params(model) == count_dense_params(model) == 8 + 8 * 3 + 3


def test_count_flops_counts_a_multiply_add_as_two_and_ignores_the_bias():
    assert count_flops(nn.Linear(10, 5), (10,)) == 2 * 10 * 5
    assert count_flops(nn.Linear(10, 5, bias=False), (10,)) == 100
    assert count_macs(nn.Linear(10, 5), (10,)) == 50


def test_count_flops_of_lenet5_matches_a_hand_count():
    conv1 = 2 * (5 * 5 * 1) * 6 * 28 * 28
    conv2 = 2 * (5 * 5 * 6) * 16 * 10 * 10
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    assert count_flops(lenet5_baseline(), (1, 28, 28)) == conv1 + conv2 + fc


def test_count_flops_leaves_the_model_state_unchanged():
    model = build_resnet(3, 24, 10, 8, (8, 8, 16, 16), (2, 2, 2, 2))
    model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    assert count_flops(model, (3, 24, 24)) > 0
    assert model.training
    assert all(torch.equal(v, buffers[k]) for k, v in model.state_dict().items())


def test_count_params_counts_zero_biases_of_a_fresh_batch_norm_model():
    # Batch norm starts with bias == 0: those are parameters, not pruned connections.
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    assert count_params(model) == count_dense_params(model) == 4 * 9 + 4 + 4 + 4
    with torch.no_grad():
        model[0].weight[0].zero_()  # prune one output channel's 9 connections
    assert count_params(model) == count_dense_params(model) - 9
