"""Latency lookup tables (ChamNet-style): what a space can build, the table's sums and
interpolation, its file, and `steerage profile-latency`. Timing runs with one repeat of
one call: these tests check the plumbing, benchmarks/bench_latency.py the accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steerage_ray.cli import main
from steerage_ray.complexity_estimate import Layer, config_layers, estimate_complexity
from steerage_ray.latency import (LatencyTable, _sample_first_axis, busy_warning,
                                  estimate_latency, layer_module, load_table, measure_latency,
                                  profile_latency, space_layers, table_filename)
from steerage_ray.models import build_model, count_dense_params
from steerage_ray.run import latency as run_latency
from steerage_ray.space import Choice, Integer, SearchSpace, get_preset

FAST = {"repeats": 1, "min_repeat_s": 0.0}
SPACES = [
    ("ffnn", (40,), get_preset("ffnn", n_features=40)),
    ("ffnn", (784,), get_preset("ffnn", n_features=784)),
    ("lenet", (1, 28, 28), get_preset("lenet", image_size=14)),
    ("lenet", (1, 8, 8), get_preset("lenet", image_size=8)),
    ("resnet", (3, 32, 32), get_preset("resnet")),
    ("resnet", (3, 32, 32), get_preset("resnet18")),
]
BOTTLENECK_RESNET = {
    "image_filter": 1, "image_size": 24, "blocks_1": 6, "blocks_2": 6, "blocks_3": 6,
    "blocks_4": 6, "conv1_filters": 56, "conv2_filters": 56, "conv3_filters": 112,
    "conv4_filters": 224, "conv5_filters": 448, "pooling": "max", "fc_layers": 2,
    "quant_bits": 8,
}


def tiny_ffnn_space() -> SearchSpace:
    return SearchSpace([Integer("num_layers", 1, 2), Choice("neurons_1", (8, 16)),
                        Choice("neurons_2", (8, 16))])


def fake_table(family, layers, overhead=0.0):
    """Seconds = a function of the sizes that is linear in the first one (so
    interpolation along it is exact), for the layers ``_sample_first_axis`` keeps."""
    measured, _ = _sample_first_axis(layers, 64)
    entries = {layer.key: 1e-6 * (1 + sum(d for d in layer.dims if isinstance(d, int)))
               for layer in measured}
    return LatencyTable(family, "cpu", 1, entries, overhead)


@pytest.mark.parametrize("family, shape, space", SPACES)
def test_table_covers_every_layer_a_sampled_config_uses(family, shape, space):
    configs = space.random(300, np.random.default_rng(0))
    if family == "resnet" and "blocks_1" in space.names:
        configs.append(BOTTLENECK_RESNET)  # the one corner of the space with bottlenecks
    layers = space_layers(family, space, shape, 10)
    table = fake_table(family, layers)
    keys = {layer.key for layer in layers}
    for config in configs:
        for layer in config_layers(family, config, shape, 10):
            assert layer.key in keys, (config, layer.key)
            expected = 1e-6 * (1 + sum(d for d in layer.dims if isinstance(d, int)))
            assert table.layer_latency(layer) == pytest.approx(expected, rel=1e-9)


def test_wide_inputs_are_sampled_and_interpolated():
    family, shape, space = SPACES[1]  # 784 features: ~190 input widths per first layer
    layers = space_layers(family, space, shape, 10)
    measured, skipped = _sample_first_axis(layers, 64)
    assert skipped > 0 and len(measured) + skipped == len(layers)
    first = sorted(layer.dims[0] for layer in measured
                   if layer.op == "linear" and layer.dims[1] == 300)
    assert len(first) == 64 and first[0] <= 39 and first[-1] == 784


def test_estimate_is_the_sum_of_its_entries_on_a_hand_built_table():
    config = {"num_layers": 2, "neurons_1": 50, "neurons_2": 75, "dr_method": 5,
              "dr_ratio": 2.0, "quant_bits": 8}
    table = LatencyTable("ffnn", "cpu", 1, {
        "linear(20,50)": 1e-3, "relu(50)": 2e-3, "linear(50,75)": 3e-3, "relu(75)": 4e-3,
        "linear(75,10)": 5e-3, "linear(30,50)": 7.0}, overhead=5e-4)
    assert estimate_latency(table, "ffnn", config, (40,), 10) == pytest.approx(15.5e-3)
    with pytest.raises(ValueError, match=r"linear\(75,3\) is not in the ffnn latency"):
        estimate_latency(table, "ffnn", config, (40,), 3)
    with pytest.raises(ValueError, match="family 'ffnn', not 'lenet'"):
        estimate_latency(table, "lenet", config, (40,), 10)


def test_interpolation_along_the_first_size_only_inside_the_measured_range():
    table = LatencyTable("ffnn", "cpu", 1, {"linear(10,5)": 1.0, "linear(20,5)": 2.0,
                                            "linear(30,5)": 4.0})
    assert table.layer_latency(Layer("linear", (15, 5))) == pytest.approx(1.5)
    assert table.layer_latency(Layer("linear", (25, 5))) == pytest.approx(3.0)
    with pytest.raises(ValueError, match=r"linear\(35,5\)"):
        table.layer_latency(Layer("linear", (35, 5)))
    with pytest.raises(ValueError, match=r"linear\(15,6\)"):
        table.layer_latency(Layer("linear", (15, 6)))


def test_resnet_layers_follow_the_builders_shapes():
    config = {"image_size": 24, "blocks_1": 2, "blocks_2": 2, "blocks_3": 2,
              "blocks_4": 2, "conv1_filters": 64, "conv2_filters": 64,
              "conv3_filters": 128, "conv4_filters": 256, "conv5_filters": 512,
              "pooling": "avg", "fc_layers": 1}
    assert [layer.key for layer in config_layers("resnet", config, (3, 32, 32), 10)] == [
        "stem(3,64,24,24)", "basic_block(64,64,1,24,24)", "basic_block(64,64,1,24,24)",
        "basic_block(64,128,2,24,24)", "basic_block(128,128,1,12,12)",
        "basic_block(128,256,2,12,12)", "basic_block(256,256,1,6,6)",
        "basic_block(256,512,2,6,6)", "basic_block(512,512,1,3,3)",
        "global_pool(512,3,3,avg)", "linear(512,10)"]


@pytest.mark.parametrize("family, shape, space", [SPACES[0], SPACES[2], SPACES[5]])
def test_timed_modules_are_the_builders_layers(family, shape, space):
    """What is timed per layer has the parameters the built model has (same modules)."""
    for config in space.random(2, np.random.default_rng(1)):
        layers = config_layers(family, config, shape, 10)
        assert (sum(count_dense_params(layer_module(layer)) for layer in layers)
                == estimate_complexity(family, config, shape, 10).params)


def test_profile_saves_a_table_that_round_trips(tmp_path):
    space = tiny_ffnn_space()
    table = profile_latency("ffnn", space, (12,), 3, threads=1, calibration=2, **FAST)
    assert len(table) == 2 + 2 * 2 + 2 + 2  # 12->w1, w1->w2, w->3, relu(w)
    assert all(seconds > 0 for seconds in table.entries.values())
    assert table.info["threads"] == 1 and table.info["torch"] == torch.__version__
    assert len(table.info["calibration_gaps_s"]) == 2
    assert len(table.info["load_average"]) == 2
    path = table.save(tmp_path / table_filename("ffnn", "cpu", 1))
    assert path.name == "latency-ffnn-cpu-b1.json"
    loaded = load_table(path)
    assert (loaded.entries, loaded.overhead, loaded.info, loaded.batch_size) == (
        table.entries, table.overhead, table.info, 1)
    for config in space.random(5, np.random.default_rng(0)):
        assert (estimate_latency(loaded, "ffnn", config, (12,), 3)
                == estimate_latency(table, "ffnn", config, (12,), 3))
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a steerage latency table"):
        load_table(path)


def test_a_table_timed_on_a_busy_cpu_is_flagged():
    def table(device, threads, loads):
        return LatencyTable("ffnn", device, 1, {"relu(8)": 1e-6},
                            info={"threads": threads, "load_average": loads})

    assert busy_warning(table("cpu", 1, [0.4, 1.2])) is None
    assert busy_warning(table("cpu", 2, [2.9, 2.5])) is None
    assert "load average 3.4 with 1 timing thread" in busy_warning(table("cpu", 1, [0.5, 3.4]))
    assert busy_warning(table("cuda", 1, [0.5, 3.4])) is None  # events time the GPU
    assert busy_warning(table("cpu", 1, [None, None])) is None  # no load average here
    assert busy_warning(LatencyTable("ffnn", "cpu", 1, {})) is None  # older tables


def test_end_to_end_measurement_leaves_the_model_alone():
    model = build_model("ffnn", {"num_layers": 1, "neurons_1": 8}, (12,), 3).train()
    seconds = measure_latency(model, (12,), batch_size=4, **FAST)
    assert 0 < seconds < 1 and model.training


# --- the command ----------------------------------------------------------------------

@pytest.fixture
def tiny_experiment(tmp_path):
    (tmp_path / "space.yaml").write_text(
        "num_layers: {randint: [1, 3]}\nneurons_1: {choice: [8, 16]}\n"
        "neurons_2: {choice: [8, 16]}\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(f"name: tiny\ndataset: {{name: digits}}\nfamily: ffnn\n"
                    f"space: {{file: {tmp_path / 'space.yaml'}}}\n")
    return path


def test_cli_writes_the_table_into_the_directory(tiny_experiment, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["profile-latency", "--family", "ffnn", "-e", str(tiny_experiment),
                 "-o", str(out), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out / 'latency-ffnn-cpu-b1.json'}")
    table = load_table(out / "latency-ffnn-cpu-b1.json")
    # the warning of a busy machine (likely while the suite runs) goes to stderr, if any
    assert captured.err.strip() == ("" if busy_warning(table) is None
                                    else f"steerage: warning: {busy_warning(table)}")
    assert table.info["input_shape"] == [64] and table.info["n_classes"] == 10
    assert "linear(64,16)" in table.entries and "linear(16,10)" in table.entries


@pytest.mark.parametrize("arguments, message", [
    (["--family", "ffnn", "--batch-size", "0"], "batch_size must be"),
    (["--family", "ffnn"], "give --experiment"),
    (["-o", "x"], "give --experiment"),
    (["--family", "lenet", "-e", "EXPERIMENT"], "searches family 'ffnn', not 'lenet'"),
    (["--family", "ffnn", "-o", "x", "--input-shape", "a,b"], "--input-shape must be"),
    (["--family", "lenet", "-o", "x", "--input-shape", "40"], "must be (C, H, W)"),
    (["--family", "ffnn", "-e", "no-such-experiment"], "unknown experiment"),
    (["--family", "ffnn", "-o", "x", "--threads", "0"], "threads must be"),
])
def test_cli_refuses_bad_input_in_one_line_before_timing(arguments, message, tiny_experiment,
                                                         capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("timed before validating")

    monkeypatch.setattr(run_latency.latency, "profile_latency", never)
    arguments = [str(tiny_experiment) if a == "EXPERIMENT" else a for a in arguments]
    assert main(["profile-latency", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("steerage: error:") and message in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_refuses_cuda_without_a_gpu(capsys, tmp_path):
    assert main(["profile-latency", "--family", "ffnn", "--device", "cuda",
                 "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'cuda' is not available" in err[0]
