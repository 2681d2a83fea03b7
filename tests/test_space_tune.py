"""Two-way conversion between SearchSpace and real Ray Tune param spaces
(``searchers.tune_space``), and Tune-style YAML space files.

Needs ray.tune's sampling code but no running Ray, so no ``ray_session``: Tune's own
variant generator resolves the converted spaces.
"""

import dataclasses
import re

import numpy as np
import pytest
from ray import tune
from ray.tune.search import sample
from ray.tune.search.variant_generator import generate_variants

from steerage_ray.searchers.tune_space import from_tune, load_space_file, to_tune
from steerage_ray.space import (PRESET_NAMES, Categorical, Choice, Float, Integer,
                                SearchSpace, ffnn_space, flatten_config, get_preset,
                                lenet_space, unflatten_config)
from steerage_ray.space.dimensions import is_real

PRESETS = {name: get_preset(name) for name in PRESET_NAMES}
PRESETS["lenet_digits"] = lenet_space(8)
PRESETS["ffnn_optional_reduction"] = ffnn_space(optional_reduction=True)


def unconditional(space: SearchSpace) -> list:
    return [dataclasses.replace(dim, condition=None) for dim in space.dimensions]


def tune_samples(param_space: dict, n: int) -> list[dict]:
    """Configs exactly as Tune's BasicVariantGenerator would resolve them (seeded)."""
    rng = np.random.default_rng(0)  # one stream: an int seed would restart it per domain
    return [spec for _ in range(n)
            for _, spec in generate_variants(param_space, random_state=rng)]


def mixed_param_space() -> dict:
    return {
        "model": {"layers": tune.randint(1, 4), "act": tune.choice(["relu", "tanh"]),
                  "width": tune.qrandint(16, 256, 16), "depth": tune.lograndint(2, 64)},
        "optim": {"lr": tune.loguniform(1e-4, 1e-1), "momentum": tune.uniform(0.5, 0.99),
                  "wd": tune.qloguniform(1e-5, 1e-2, 1e-5), "name": "sgd"},
        "dropout": tune.quniform(0.0, 0.5, 0.05),
        "groups": tune.qlograndint(4, 64, 4),
        "batch_size": tune.choice([128, 32, 64]),
        "mixed": tune.choice([1, "two", None]),
        "epochs": 5,
        "layers_list": [1, 2],
    }


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_tune(name):
    space = PRESETS[name]
    back = from_tune(to_tune(space))
    # tune.choice cannot say whether numbers are ordered: numbers come back as a Choice
    expected = [Choice(d.name, d.choices) if isinstance(d, Categorical)
                and all(is_real(c) for c in d.choices) else d for d in unconditional(space)]
    assert unconditional(back) == expected  # bounds, steps, choices, log
    assert back.constants == space.constants


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tune_samples_of_converted_presets_lie_in_the_space(name):
    space = PRESETS[name]
    configs = tune_samples(to_tune(space), 40)
    assert len(configs) == 40
    assert all(space.contains(flatten_config(c)) for c in configs)
    for dim in space.dimensions:  # Tune explores more than one value of every dimension
        assert len({c[dim.name] for c in configs}) > 1 or dim.n_values == 1


def test_from_tune_maps_each_domain_to_the_same_values():
    space = from_tune(mixed_param_space())
    dims = {dim.name: dim for dim in space.dimensions}
    assert dims["model/layers"] == Integer("model/layers", 1, 3)  # randint: upper exclusive
    assert dims["model/act"] == Categorical("model/act", ("relu", "tanh"))
    assert dims["model/width"] == Integer("model/width", 16, 256, step=16)
    assert dims["model/depth"] == Integer("model/depth", 2, 63, log=True)
    assert dims["optim/lr"] == Float("optim/lr", 1e-4, 1e-1, log=True)
    assert dims["optim/momentum"] == Float("optim/momentum", 0.5, 0.99)
    assert dims["optim/wd"] == Float("optim/wd", 1e-5, 1e-2, step=1e-5, log=True)
    assert dims["dropout"] == Float("dropout", 0.0, 0.5, step=0.05)
    assert dims["groups"] == Integer("groups", 4, 64, step=4, log=True)
    assert dims["batch_size"] == Choice("batch_size", (32, 64, 128))
    assert dims["mixed"] == Categorical("mixed", (1, "two", None))
    assert space.constants == {"optim/name": "sgd", "epochs": 5, "layers_list": [1, 2]}


def test_tune_samples_of_a_tune_space_lie_in_the_converted_space():
    param_space = mixed_param_space()
    space = from_tune(param_space)
    configs = [flatten_config(c) for c in tune_samples(param_space, 200)]
    assert all(space.contains(c) for c in configs)
    assert max(c["model/layers"] for c in configs) == 3  # the exclusive bound, as in Tune
    snapped = [space.key(c) for c in configs]
    assert all(isinstance(v, float) and v == round(v, 2)
               for v in (k[space.names.index("dropout")] for k in snapped))


def test_tune_quantization_rules_are_kept():
    dims = from_tune({"a": tune.qrandint(3, 20, 5), "b": tune.qrandint(1, 10, 1),
                      "c": tune.qlograndint(1, 10, 1)}).dimensions
    assert dims[0] == Integer("a", 5, 20, step=5)  # multiples of q, upper inclusive
    assert dims[1] == Integer("b", 1, 9)  # q == 1 keeps Tune's exclusive upper bound
    assert dims[2] == Integer("c", 1, 9, log=True)
    values = {v for c in tune_samples({"a": tune.qrandint(3, 20, 5)}, 100) for v in c.values()}
    assert values == {5, 10, 15, 20}


def test_to_tune_of_a_tune_space_gives_the_same_domain_types_and_bounds():
    original = flatten_config(mixed_param_space())
    again = flatten_config(to_tune(from_tune(mixed_param_space())))
    assert again.keys() == original.keys()
    for key, domain in original.items():
        converted = again[key]
        if not isinstance(domain, sample.Domain):
            assert converted == domain
            continue
        assert type(converted) is type(domain), key
        assert type(converted.get_sampler()) is type(domain.get_sampler()), key
        if isinstance(domain, sample.Categorical):
            assert sorted(map(repr, converted.categories)) == \
                sorted(map(repr, domain.categories))
        else:
            assert (converted.lower, converted.upper) == (domain.lower, domain.upper), key
        if isinstance(domain.get_sampler(), sample.Quantized):
            assert converted.get_sampler().q == domain.get_sampler().q


def test_to_tune_nests_keys_drops_conditions_and_keeps_constants():
    space = from_tune(mixed_param_space())
    param_space = to_tune(space)
    assert param_space["optim"]["name"] == "sgd" and param_space["epochs"] == 5
    assert isinstance(param_space["model"]["layers"], sample.Integer)
    ffnn = to_tune(get_preset("ffnn"))
    assert isinstance(ffnn["neurons_6"], sample.Integer)  # unconditional in Tune
    assert (ffnn["neurons_6"].lower, ffnn["neurons_6"].upper) == (50, 600)


def test_grids_tune_cannot_quantize_become_choices():
    space = SearchSpace([Integer("a", 3, 20, step=5), Float("b", 0.05, 0.5, step=0.2)])
    param_space = to_tune(space)
    assert param_space["a"].categories == [3, 8, 13, 18]
    assert param_space["b"].categories == [0.05, 0.25, 0.45]
    back = from_tune(param_space)
    assert back["a"] == Choice("a", (3, 8, 13, 18))
    configs = tune_samples(param_space, 30)
    assert all(space.contains(c) for c in configs)


@pytest.mark.parametrize("param_space, words", [
    ({"a": tune.grid_search([1, 2])}, ["a", "grid_search", "tune.choice"]),
    ({"net": {"a": tune.grid_search([1, 2])}}, ["net/a", "tune.choice"]),
    ({"a": tune.sample_from(lambda config: 1)}, ["a", "sample_from", "Condition"]),
    ({"a": tune.randn(0, 1)}, ["a", "unbounded", "tune.uniform"]),
    ({"a": tune.qrandn(0, 1, 0.1)}, ["a", "unbounded"]),
    ({"a": [tune.randint(0, 2), 3]}, ["a", "lists"]),
    ({"a": tune.choice([[1, 2], [3]])}, ["a", "hashable", "tuple"]),
    ({"a": tune.choice([1, 1, 2])}, ["a", "duplicate"]),
    ({"a": tune.choice([])}, ["a", "non-empty"]),
    ({"a": tune.randint(0.5, 3)}, ["a", "lower", "integer"]),
    ({"a": tune.randint(3, 3)}, ["a", "low", "high"]),
    ({"a": sample.Float(0.0, None)}, ["a", "high"]),
    ({"a/b": tune.randint(0, 2)}, ["a/b", "'/'"]),
    ({"epochs": 5}, ["at least one dimension"]),
    ([("a", tune.randint(0, 2))], ["mapping"]),
])
def test_unsupported_tune_input_raises_naming_the_key(param_space, words):
    with pytest.raises(ValueError) as error:
        from_tune(param_space)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_to_tune_rejects_non_spaces():
    with pytest.raises(ValueError, match="SearchSpace"):
        to_tune({"a": 1})


def test_flatten_and_unflatten_invert_each_other():
    nested = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}
    flat = flatten_config(nested)
    assert flat == {"a/b": 1, "a/c/d": [1, 2], "e": {}, "f": None}
    assert unflatten_config(flat) == nested
    assert flatten_config(unflatten_config(flat)) == flat
    for bad in ({"a": 1, "a/b": 2}, {"a/b": 2, "a": 1}, {"a//b": 1}, {"": 1}, {3: 1}):
        with pytest.raises(ValueError, match="config key"):
            unflatten_config(bad)
    with pytest.raises(ValueError, match="config key 'x/y/z'"):
        flatten_config({"x": {"y/z": 1}})


def test_converted_space_samples_the_same_values_as_tune():
    param_space = {"width": tune.qrandint(16, 64, 16), "act": tune.choice(["a", "b"])}
    space = from_tune(param_space)
    ours = {space.key(c) for c in space.sobol(100, seed=0)}
    theirs = {space.key(c) for c in tune_samples(param_space, 100)}
    assert ours == theirs == {(w, a) for w in (16, 32, 48, 64) for a in ("a", "b")}
    assert np.isclose(len(ours), space.cardinality)


# --- YAML space files -------------------------------------------------------------



def test_space_file_matches_the_tune_space_it_describes(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "num_layers: {randint: [1, 4]}\n"
        "neurons_1: {qrandint: [32, 256, 32]}\n"
        "quant_bits: {choice: [8, 32]}\n"
        "pool: {choice: [max, avg]}\n"
        "optimizer: {lr: {loguniform: [0.0001, 0.1]}}\n"
        "epochs: 10\n")
    space = load_space_file(path)
    assert space["num_layers"] == Integer("num_layers", 1, 3)
    assert space["neurons_1"] == Integer("neurons_1", 32, 256, step=32)
    assert space["quant_bits"] == Choice("quant_bits", (8, 32))
    assert isinstance(space["pool"], Categorical)
    lr = space["optimizer/lr"]
    assert isinstance(lr, Float) and lr.log and (lr.low, lr.high) == (0.0001, 0.1)
    assert space.constants == {"epochs": 10}


@pytest.mark.parametrize("text, field", [
    ("a: {randint: 5}\n", "a.randint"),
    ("a: {uniform: [2, 1]}\n", "a"),
    ("a: {grid_search: [1, 2]}\nb: {randint: [1, 3]}\n", "a"),
    ("[1, 2]\n", "mapping"),
])
def test_bad_space_files_name_the_field(tmp_path, text, field):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(field)):
        load_space_file(path)


def test_missing_space_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_space_file(tmp_path / "nope.yaml")
