"""A network's precision, given or chosen after training (steerage_ray.precision), as
trials, local-search steps and the default algorithm's presets use it; real training on
digits."""

from __future__ import annotations

import pytest

from steerage_ray.local_search import Candidate
from steerage_ray.local_search.schemes import build_scheme_options, run_one_scheme
from steerage_ray.models import QUANT_BITS, build_model, quantize_model
from steerage_ray.precision import fewest_bits, precision_of
from steerage_ray.space import preset_for_algorithm
from steerage_ray.trainables import train_config
from steerage_ray.training import TrainSettings, evaluate, train_model

CONFIG = {"num_layers": 2, "neurons_1": 64, "neurons_2": 32, "dr_method": None,
          "dr_ratio": None}


@pytest.fixture(scope="module")
def trained(digits):
    model = build_model("ffnn", CONFIG, digits.input_shape, digits.n_classes, seed=0)
    train_model(model, digits, TrainSettings(epochs=5, batch_size=64))
    return model


def val_acc_at(model, data, bits):
    return evaluate(quantize_model(model, bits), data.X_val, data.y_val)[0]


def test_the_fewest_bits_keep_the_validation_accuracy_and_fewer_do_not(digits, trained):
    float_acc = evaluate(trained, digits.X_val, digits.y_val)[0]
    bits = fewest_bits(trained, digits.X_val, digits.y_val)
    assert bits in QUANT_BITS
    assert val_acc_at(trained, digits, bits) >= float_acc
    for fewer in [b for b in QUANT_BITS if b < bits]:
        assert val_acc_at(trained, digits, fewer) < float_acc, fewer


def test_a_network_too_coarse_at_any_width_keeps_32_bits(digits, trained):
    """The validation accuracy to keep is the caller's: above anything reachable, only
    the float network (32 bits) is kept."""
    assert fewest_bits(trained, digits.X_val, digits.y_val, val_acc=1.01) == 32


def test_given_bits_are_kept_and_measured_at(digits, trained):
    precision = precision_of(trained, digits, 4)
    quantized = quantize_model(trained, 4)
    assert precision.bits == 4
    assert precision.val_acc == evaluate(quantized, digits.X_val, digits.y_val)[0]
    assert precision.test_acc == evaluate(quantized, digits.X_test, digits.y_test)[0]
    chosen = precision_of(trained, digits)
    assert chosen.bits == fewest_bits(trained, digits.X_val, digits.y_val)
    assert chosen.val_acc >= evaluate(trained, digits.X_val, digits.y_val)[0]


def test_a_trial_without_quant_bits_reports_the_bits_it_chose(digits):
    config = {**CONFIG, "family": "ffnn", "epochs": 3, "batch_size": 64, "seed": 0}
    model, scores = train_config(config, digits)
    assert scores["quant_bits"] == fewest_bits(model, digits.X_val, digits.y_val)
    assert scores["quant_test_acc"] == precision_of(model, digits).test_acc
    _, given = train_config({**config, "quant_bits": 16}, digits)
    assert given["quant_bits"] == 16
    assert given["val_acc"] == scores["val_acc"]  # the bits change nothing trained


def test_each_local_search_step_gets_its_own_precision_unless_the_candidate_has_one(
        digits, trained):
    settings = TrainSettings(epochs=2, batch_size=32, lr=0.01)
    options = build_scheme_options(("C",), None, None, None, 0.0)["C"]
    candidate = Candidate("ffnn", CONFIG, trained.state_dict())
    result, _ = run_one_scheme("C", candidate, digits, 3, settings, options, 0, 1, None)
    for step, row in result.history.iterrows():
        model = result.models[step]
        assert row["quant_bits"] == fewest_bits(model, digits.X_val, digits.y_val), step
        assert row["quant_test_acc"] == precision_of(model, digits).test_acc
    given = Candidate("ffnn", {**CONFIG, "quant_bits": 16}, trained.state_dict())
    result, _ = run_one_scheme("C", given, digits, 1, settings, options, 0, 1, None)
    assert (result.history["quant_bits"] == 16).all()


@pytest.mark.parametrize("preset", ["ffnn", "lenet", "resnet", "resnet18"])
def test_the_default_algorithm_chooses_the_precision_and_the_paper_searches_it(preset):
    assert "quant_bits" not in preset_for_algorithm(preset, "steerage").names
    assert "quant_bits" in preset_for_algorithm(preset, "paper").names
