"""SCANN: the feed-forward graph, neuron growth, Schemes A/B/C and the compact export."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from steerage_ray.local_search import (
    PruningGuard,
    ScannOptions,
    SkipMLP,
    SparseFeedForward,
    export_model,
    grow_neurons,
    run_scheme,
)
from steerage_ray.models import build_ffnn, count_params
from steerage_ray.pareto import select_point
from steerage_ray.training import TrainSettings, train_model

QUICK = TrainSettings(epochs=2, batch_size=64, lr=0.01, weight_decay=1e-4)


@pytest.fixture(scope="module")
def trained_mlp(digits):
    torch.manual_seed(0)
    model = build_ffnn(64, [48, 24], 10)
    train_model(model, digits, TrainSettings(epochs=6, batch_size=64))
    return model


def _linears(model):
    return [m for m in model if isinstance(m, nn.Linear)]


def _sparsify(net, density, seed):
    generator = torch.Generator().manual_seed(seed)
    for layer in net.layers:
        layer.set_mask(torch.rand(layer.mask.shape, generator=generator) < density)


# -- the graph ------------------------------------------------------------------------------

@pytest.mark.parametrize("skip", [False, True])
def test_sparse_feed_forward_from_an_mlp_computes_the_same_function(trained_mlp, skip):
    net = SparseFeedForward.from_linears(_linears(trained_mlp), skip_connections=skip)
    x = torch.randn(50, 64)
    torch.testing.assert_close(net(x), trained_mlp(x))
    n_weights = sum(l.weight.numel() for l in _linears(trained_mlp))
    assert len(net.active_connections()) == n_weights  # skip connections start dormant
    assert net.count_params() == count_params(trained_mlp)


def test_skip_graph_lets_any_neuron_feed_any_later_one():
    net = SparseFeedForward(3, [2, 2], 2, skip_connections=True)
    # ids: inputs 0-2, block 0: 3-4, block 1: 5-6, outputs 7-8
    connections = net.active_connections()
    assert (0, 7) in connections and (3, 7) in connections and (3, 5) in connections
    assert (3, 4) not in connections and (5, 3) not in connections
    assert len(connections) == 3 * 2 + 5 * 2 + 7 * 2
    mlp = SparseFeedForward(3, [2, 2], 2)
    assert (0, 7) not in mlp.active_connections()
    assert len(mlp.active_connections()) == 3 * 2 + 2 * 2 + 2 * 2


def test_neuron_activity_is_summed_absolute_activation():
    torch.manual_seed(0)
    net = SparseFeedForward(5, [4, 3], 2, skip_connections=True)
    x = torch.randn(30, 5)
    activity = net.neuron_activity(x)
    assert [a.shape[0] for a in activity] == [4, 3]
    first = torch.relu(net.layers[0](x))
    torch.testing.assert_close(activity[0], first.abs().sum(0))


@pytest.mark.parametrize("skip", [False, True])
def test_compact_removes_dead_neurons_and_folds_constant_ones(skip):
    torch.manual_seed(0)
    net = SparseFeedForward(6, [5, 4], 3, skip_connections=skip)
    with torch.no_grad():
        net.layers[0].mask[1] = 0          # neuron (0, 1): no inputs, constant relu(bias)
        net.layers[0].bias[1] = 0.7
        column = net.source_offset(1, 1) + 3
        net.layers[1].mask[:, column] = 0  # neuron (0, 3): feeds nothing ...
        if skip:
            net.layers[2].mask[:, net.source_offset(2, 1) + 3] = 0
        net.layers[2].mask[:, net.source_offset(2, 2) + 2] = 0  # neuron (1, 2): no output
        for layer in net.layers:
            layer.apply_mask()
    x = torch.randn(40, 6)
    compact = net.compact()
    assert compact.hidden_sizes == [3, 3]
    torch.testing.assert_close(compact(x), net(x))
    assert net.count_params() == count_params(compact)
    assert net.count_flops() < 2 * sum(l.weight.numel() for l in net.layers)


# -- neuron growth -----------------------------------------------------------------------------

@pytest.mark.parametrize("skip", [False, True])
def test_splitting_keeps_the_output_nearly_unchanged(skip):
    """Tolerance: noise 0 -> identical up to float rounding (1e-5); the default relative
    noise of 0.01 -> max |change| below 1% of the largest logit (measured: 0.1-0.4%)."""
    torch.manual_seed(0)
    net = SparseFeedForward(20, [32, 16], 5, skip_connections=skip)
    x = torch.randn(200, 20)
    before = net(x)
    assert grow_neurons(net, x.numpy(), 0.1, noise=0.0) == 5
    assert net.hidden_sizes[0] + net.hidden_sizes[1] == 53
    torch.testing.assert_close(net(x), before, rtol=0, atol=1e-5)
    baseline = net(x)
    grow_neurons(net, x.numpy(), 0.1, noise=0.01, seed=1)
    change = (net(x) - baseline).abs().max()
    assert 0 < change < 0.01 * baseline.abs().max()


def test_split_copies_the_most_active_neuron():
    torch.manual_seed(0)
    net = SparseFeedForward(8, [6], 3)
    x = torch.randn(64, 8)
    parent = int(net.neuron_activity(x)[0].argmax())
    parent_in = net.layers[0].weight[parent].clone()
    parent_out = net.layers[1].weight[:, parent].clone()
    grow_neurons(net, x.numpy(), 0.1, noise=0.0)  # round(0.6) -> one neuron
    assert net.hidden_sizes == [7]
    torch.testing.assert_close(net.layers[0].weight[6], parent_in)
    torch.testing.assert_close(net.layers[1].weight[:, 6], parent_out / 2)
    torch.testing.assert_close(net.layers[1].weight[:, parent], parent_out / 2)


def test_random_neuron_growth_leaves_the_function_unchanged():
    torch.manual_seed(0)
    net = SparseFeedForward(8, [6, 4], 3, skip_connections=True)
    _sparsify(net, 0.5, seed=0)
    x = torch.randn(32, 8)
    before = net(x)
    assert grow_neurons(net, x.numpy(), 0.2, mode="random", seed=0) == 2
    assert sum(net.hidden_sizes) == 12
    torch.testing.assert_close(net(x), before)


# -- schemes ----------------------------------------------------------------------------------

def test_scheme_c_prunes_and_records_its_history(digits, trained_mlp):
    start = SparseFeedForward.from_linears(_linears(trained_mlp))
    options = ScannOptions(initial_pruning_ratio=0.5, pruning_ratio=0.3, growth_ratio=0.2,
                           prune_tolerance=None)
    result = run_scheme("C", start, digits, iterations=4, settings=QUICK, options=options,
                        pretrained=True)
    history = result.history
    assert list(history["operation"]) == ["start", "prune_hard", "prune_connections",
                                          "prune_connections", "grow_connections"]
    assert not history["undone"].any()
    assert history.loc[0, "params"] == count_params(trained_mlp)
    assert history.loc[1, "params"] < 0.6 * history.loc[0, "params"]
    assert history.loc[3, "params"] < 0.75 * history.loc[2, "params"]
    assert history.loc[4, "params"] > history.loc[3, "params"]
    assert (history["flops"].diff().iloc[1:] * history["params"].diff().iloc[1:] > 0).all()
    assert history["val_acc"].between(0.5, 1).all()
    assert result.best_step == select_point(history).name
    assert not result.best_model.skip_connections
    x = torch.as_tensor(digits.X_test)
    assert (result.best_model(x).argmax(1).numpy() == digits.y_test).mean() == pytest.approx(
        history.loc[result.best_step, "test_acc"])


def test_scheme_a_starts_small_and_grows(digits, trained_mlp):
    start = SparseFeedForward.from_linears(_linears(trained_mlp), skip_connections=True)
    result = run_scheme("A", start, digits, iterations=2, settings=QUICK,
                        options=ScannOptions(start_width=0.25, start_density=0.3))
    history = result.history
    assert list(history["operation"]) == ["start", "grow_connections", "grow_neurons"]
    assert result.models[0].hidden_sizes == [12, 6]
    assert history["params"].is_monotonic_increasing
    assert sum(result.models[2].hidden_sizes) > 18
    assert history.loc[0, "params"] < 0.25 * count_params(trained_mlp)


def test_scheme_b_grows_skip_connections(digits, trained_mlp):
    start = SparseFeedForward.from_linears(_linears(trained_mlp), skip_connections=True)
    result = run_scheme("B", start, digits, iterations=2, settings=QUICK, pretrained=True,
                        options=ScannOptions(schedule=("prune_hard", "grow_connections"),
                                             growth_ratio=0.1))
    grown = result.models[2]
    skips = [(s, t) for s, t in grown.active_connections() if s < 64 and t >= 64 + 48]
    assert skips, "connection growth activated no skip connection from the inputs"


def test_schemes_are_deterministic_for_a_seed(digits, trained_mlp):
    def once(seed):
        start = SparseFeedForward.from_linears(_linears(trained_mlp), skip_connections=True)
        return run_scheme("B", start, digits, iterations=2, settings=QUICK, seed=seed,
                          pretrained=True).history.drop(columns="seconds")

    pd.testing.assert_frame_equal(once(3), once(3))


@pytest.mark.parametrize("field, value", [
    ("growth_ratio", 1.0), ("pruning_ratio", 0.0), ("initial_pruning_ratio", 2),
    ("neuron_growth_ratio", -0.1), ("start_width", 1.5), ("start_density", 0)])
def test_bad_scheme_ratios_are_rejected(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a number strictly between 0 and 1"):
        ScannOptions(**{field: value})


def test_unknown_schedule_operation_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown operation.*grow_connections"):
        ScannOptions(schedule=("grow_connections", "shrink"))


# -- export -------------------------------------------------------------------------------------

@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load's deprecation notice
def test_compact_export_matches_the_masked_model(trained_mlp, skip, tmp_path):
    net = SparseFeedForward.from_linears(_linears(trained_mlp), skip_connections=skip)
    _sparsify(net, 0.15, seed=0)  # leaves some neurons dead
    x = torch.randn(300, 64)
    expected = net(x)
    exported = export_model(net, (64,), quant_bits=8)
    module = exported.module
    assert isinstance(module, SkipMLP if skip else nn.Sequential)
    assert sum(l.out_features for l in module.modules()
               if isinstance(l, nn.Linear)) < 48 + 24 + 10  # dead neurons are gone
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(exported.torchscript(x), expected, rtol=1e-5, atol=1e-5)
    assert count_params(module) == net.count_params()
    agreement = (exported.quantized(x).argmax(1) == expected.argmax(1)).float().mean()
    assert agreement > 0.9

    files = exported.save(tmp_path)
    reloaded = torch.jit.load(str(files["torchscript"]))
    torch.testing.assert_close(reloaded(x), expected, rtol=1e-5, atol=1e-5)
    state = torch.load(files["state_dict"])
    assert set(state) == set(module.state_dict())

    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    model_proto = onnx.load_from_string(exported.onnx)
    onnx.checker.check_model(model_proto)
    (logits,) = ReferenceEvaluator(model_proto).run(None, {"input": x[:20].numpy()})
    np.testing.assert_allclose(logits, expected[:20].detach().numpy(), rtol=1e-4, atol=1e-4)
    assert files["onnx"].read_bytes() == exported.onnx


# -- the pruning guard ------------------------------------------------------------------------

def _rows(*values):
    return [{"operation": op, "val_acc": acc, "undone": undone} for op, acc, undone in values]


def test_the_guard_judges_pruning_steps_against_the_three_best_kept_steps():
    guard = PruningGuard(tolerance=0.01, max_undos=2)
    kept = [("start", 0.97, False), ("prune_hard", 0.99, False),
            ("grow_connections", 0.96, False), ("prune_connections", 0.95, True)]
    assert PruningGuard.reference(_rows(*kept)) == pytest.approx((0.99 + 0.97 + 0.96) / 3)
    # one lucky 0.99 does not make every later pruning fail: the reference is 0.9733
    assert not guard.rejects(_rows(*kept, ("prune_connections", 0.965, False)))
    assert guard.scale == 1.0 and guard.undos == 0
    assert not guard.rejects(_rows(*kept, ("grow_connections", 0.5, False)))  # growth: never
    assert guard.rejects(_rows(*kept, ("prune_connections", 0.96, False)))
    assert guard.scale == 0.5 and guard.undos == 1 and not guard.finished
    assert not guard.rejects(_rows(*kept, ("prune_connections", 0.97, False)))
    assert guard.scale == 1.0 and not guard.finished  # a kept pruning step: full ratio again
    assert guard.rejects(_rows(*kept, ("prune_conv", 0.90, False)))
    assert guard.rejects(_rows(*kept, ("prune_area", 0.90, False)))
    assert guard.scale == 0.25 and guard.undos == 3 and guard.finished  # 2 in a row


def test_on_a_tiny_validation_set_one_flipped_example_is_not_damage():
    rows = [("start", 1.0, False), ("prune_connections", 35 / 36, False)]
    assert PruningGuard(0.01, 3, n_val=36).allowed_drop == pytest.approx(1 / 36)
    assert not PruningGuard(0.01, 3, n_val=36).rejects(_rows(*rows))
    assert PruningGuard(0.01, 3).rejects(_rows(*rows))
    assert PruningGuard(0.01, 3, n_val=359).allowed_drop == 0.01


def test_an_undone_pruning_step_restarts_from_the_kept_model_and_the_scheme_stops(
        digits, trained_mlp):
    start = SparseFeedForward.from_linears(_linears(trained_mlp))
    options = ScannOptions(schedule=("prune_connections",), pruning_ratio=0.95,
                           prune_tolerance=0.0, max_undos=2)
    result = run_scheme("C", start, digits, iterations=8, settings=QUICK, options=options,
                        pretrained=True)
    history = result.history
    weights = sum(int(layer.mask.sum()) for layer in start.layers)
    assert history.loc[1, "undone"]  # 95% of the weights gone: validation collapses
    assert history.loc[1, "val_acc"] < history.loc[0, "val_acc"] - 0.05
    # step 2 prunes half as much (0.475) from the restored start, not from step 1's model
    pruned = weights - sum(int(layer.mask.sum()) for layer in result.models[2].layers)
    assert pruned == round(0.475 * weights)
    assert len(history) <= 9
    if len(history) < 9:  # ended early: by two undone steps in a row
        assert history["undone"].iloc[-2:].all()
    assert not history.loc[result.best_step, "undone"] or result.best_step == 0


def test_pruning_without_a_guard_never_undoes(digits, trained_mlp):
    start = SparseFeedForward.from_linears(_linears(trained_mlp))
    options = ScannOptions(schedule=("prune_connections",), pruning_ratio=0.9,
                           prune_tolerance=None)
    result = run_scheme("C", start, digits, iterations=2, settings=QUICK, options=options,
                        pretrained=True)
    assert len(result.history) == 3 and not result.history["undone"].any()
    assert result.history["params"].is_monotonic_decreasing
