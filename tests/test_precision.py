"""A network's precision, given or chosen after training (steerage_ray.precision), as
trials, local-search steps and the default algorithm's presets use it; real training on
digits."""

from __future__ import annotations

import pytest
from ray import tune

from steerage_ray.global_search import global_search
from steerage_ray.local_search import Candidate
from steerage_ray.local_search.schemes import build_scheme_options, run_one_scheme
from steerage_ray.models import QUANT_BITS, build_model, quantize_model
from steerage_ray.precision import choices_as_constant, fewest_bits, precision_of
from steerage_ray.searchers.tune_space import from_tune
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


def test_the_precision_is_chosen_among_the_allowed_widths_only(digits, trained):
    """A tuple of widths limits the choice; where none of them keeps the validation
    accuracy, the most of them is taken."""
    float_acc = evaluate(trained, digits.X_val, digits.y_val)[0]
    for choices in [(8, 32), (16, 32), (4, 16)]:
        bits = fewest_bits(trained, digits.X_val, digits.y_val, choices=choices)
        kept = [b for b in sorted(choices) if b == 32 or val_acc_at(trained, digits, b) >= float_acc]
        assert bits == (kept[0] if kept else max(choices)), choices
        assert precision_of(trained, digits, choices).bits == bits
    assert fewest_bits(trained, digits.X_val, digits.y_val, val_acc=1.01, choices=(4, 8)) == 8
    assert precision_of(trained, digits, (4,)).bits == 4


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
    _, allowed = train_config({**config, "precision_choices": [16, 32]}, digits)
    assert allowed["quant_bits"] == fewest_bits(model, digits.X_val, digits.y_val,
                                                choices=(16, 32))


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
    allowed = Candidate("ffnn", {**CONFIG, "precision_choices": [8, 32]},
                        trained.state_dict())
    result, _ = run_one_scheme("C", allowed, digits, 2, settings, options, 0, 1, None)
    for step, row in result.history.iterrows():
        assert row["quant_bits"] == fewest_bits(result.models[step], digits.X_val,
                                                digits.y_val, choices=(8, 32)), step


@pytest.mark.parametrize("preset", ["ffnn", "lenet", "resnet", "resnet18"])
def test_the_default_algorithm_chooses_the_precision_and_the_paper_searches_it(preset):
    assert "quant_bits" not in preset_for_algorithm(preset, "steerage").names
    assert "quant_bits" in preset_for_algorithm(preset, "paper").names


def test_a_users_quant_bits_become_the_widths_each_network_chooses_among(ray_session,
                                                                         tmp_path):
    """The default algorithm never searches quant_bits (it changes nothing trained): a
    space's quant_bits lists the widths allowed, and every trial takes the fewest of
    them that keep its validation accuracy."""
    space = {"num_layers": 1, "neurons_1": tune.choice([8, 16, 24, 32, 40, 48, 56, 64]),
             "dr_method": None, "dr_ratio": None, "quant_bits": tune.choice([8, 32])}
    result = global_search("digits", "ffnn", space=space, budget=6, epochs=1,
                           final_epochs=1, seed=0, verbose=0, storage_path=str(tmp_path),
                           name="choices")
    assert result.searcher.space.names == ("neurons_1",)
    trials = result.trials
    assert len(trials) == 6 and set(trials["quant_bits"]) <= {8, 32}
    assert "config/quant_bits" not in trials  # chosen after training, not drawn
    assert trials["config/neurons_1"].is_unique  # no network trained twice
    assert result.best_config["precision_choices"] == [8, 32]


def test_quant_bits_as_choices_must_be_supported_widths():
    space = from_tune({"n": tune.choice([1, 2]), "quant_bits": tune.choice([8, 32])})
    converted = choices_as_constant(space)
    assert converted.names == ("n",)
    assert converted.constants == {"precision_choices": [8, 32]}
    assert choices_as_constant(converted) == converted
    for bad in (tune.choice([8, 12]), tune.uniform(4, 32)):
        with pytest.raises(ValueError, match=r"space: quant_bits must be a choice among "
                                             r"\[4, 8, 16, 32\]"):
            choices_as_constant(from_tune({"n": tune.choice([1, 2]), "quant_bits": bad}))


@pytest.mark.parametrize("key, value, message", [
    ("quant_bits", tune.choice([8, 12]), "quant_bits must be a choice among"),
    ("quant_bits", 12, "quant_bits must be one of \\[4, 8, 16, 32\\]"),
    ("precision_choices", [8, 3], "precision_choices must be a non-empty list"),
    ("precision_choices", [], "precision_choices must be a non-empty list"),
])
def test_unsupported_widths_are_refused_before_any_trial(key, value, message):
    """In either mode, and before Ray starts (no ray_session here)."""
    space = {"num_layers": 1, "neurons_1": tune.choice([8, 16]), "dr_method": None,
             "dr_ratio": None, key: value}
    for algorithm in ("steerage", "paper"):
        with pytest.raises(ValueError, match=f"space: {message}"):
            global_search("digits", "ffnn", space=space, budget=4, algorithm=algorithm,
                          verbose=0)
