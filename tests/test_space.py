"""Search spaces without Ray: dimensions, encoding, Sobol pools, mutation, presets."""

import collections
import dataclasses
import itertools
import pickle
import subprocess
import sys

import numpy as np
import pytest

import steerage_ray.space.search_space as search_space_module
from steerage_ray.data import prepare_for_config, reduced_dimension
from steerage_ray.space import (PRESET_NAMES, Categorical, Choice, Condition, Float,
                                Integer, SearchSpace, ffnn_space, get_preset,
                                lenet_fc_ranges, lenet_space, max_dr_ratio,
                                preset_for_algorithm, resnet_depth, resnet_space)

ALL_PRESETS = {name: get_preset(name) for name in PRESET_NAMES}
ALL_PRESETS["ffnn_letter"] = ffnn_space(n_features=16)
ALL_PRESETS["lenet_digits"] = lenet_space(image_size=8)


def tiny_conditional_space() -> SearchSpace:
    """18 configs: 2 with one layer, 2*2 with two, 2*2*3 with three."""
    return SearchSpace([
        Integer("layers", 1, 3),
        Integer("width_1", 1, 2),
        Integer("width_2", 1, 2, condition=Condition("layers", 2)),
        Categorical("act_3", ("relu", "tanh", "gelu"), condition=Condition("layers", 3)),
    ], constants={"epochs": 3})


def brute_force_keys(space: SearchSpace) -> set:
    """Every key of a small space, by filtering the full product of grids."""
    grids = []
    for dim in space.dimensions:
        values = [dim.decode(dim.code_at(k)) for k in range(dim.n_values)]
        grids.append(values + ([None] if dim.condition else []))
    keys = set()
    for values in itertools.product(*grids):
        config = dict(zip(space.names, values))
        for dim in space.dimensions:
            parent = dim.condition
            active = parent is None or (config[parent.parent] is not None
                                        and config[parent.parent] >= parent.min_value)
            if active != (config[dim.name] is not None):
                break
        else:
            keys.add(tuple(values))
    return keys


# ----------------------------------------------------------------------------- dimensions
def test_package_imports_neither_ray_nor_torch():
    code = ("import sys, steerage_ray.space; "
            "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_integer_grid_ends_below_an_off_grid_high():
    dim = Integer("conv1_filters", 56, 98, step=8)
    assert dim.n_values == 6 and dim.max_value == 96
    assert [dim.decode(dim.code_at(k)) for k in range(6)] == [56, 64, 72, 80, 88, 96]
    assert dim.contains(96) and dim.contains(96.0)
    assert not dim.contains(98) and not dim.contains(60) and not dim.contains(True)
    assert not dim.contains("64") and not dim.contains(None)
    assert dim.snap(98) == 96 and dim.snap(10) == 56 and dim.snap(67.9) == 64
    assert isinstance(dim.snap(70.5), int)
    assert dim.encode(72) == 72.0 and dim.decode(73.9) == 72


def test_from_unit_gives_each_grid_value_an_equal_share():
    dim = Integer("num_layers", 1, 6)
    assert [dim.from_unit((k + 0.5) / 6) for k in range(6)] == [1, 2, 3, 4, 5, 6]
    assert dim.from_unit(0.0) == 1 and dim.from_unit(1.0) == 6
    with pytest.raises(ValueError, match="num_layers"):
        dim.from_unit(1.5)


def test_float_step_values_have_no_float_noise():
    dim = Float("dr_ratio", 1.0, 20.0, step=0.1)
    assert dim.n_values == 191 and dim.max_value == 20.0
    values = [dim.from_unit(u) for u in np.linspace(0, 1, 1000)]
    assert all(repr(v) == f"{v:.1f}" for v in values)
    assert dim.from_unit(13.5 / 191) == 2.3  # 1.0 + 13 * 0.1, not 2.3000000000000003
    assert dim.contains(2.3000000000000003) and dim.snap(2.3000000004) == 2.3
    assert not dim.contains(2.35) and not dim.contains(20.1)


def test_continuous_and_log_floats():
    linear = Float("dropout", 0.0, 0.5)
    assert linear.n_values is None and linear.from_unit(0.5) == 0.25
    assert linear.contains(0.123) and not linear.contains(0.6) and linear.snap(0.6) == 0.5
    log = Float("lr", 1e-4, 1e-2, log=True)
    assert log.from_unit(0.5) == pytest.approx(1e-3)
    stepped_log = Float("lr", 1e-4, 1e-2, step=1e-4, log=True)
    draws = [stepped_log.from_unit(u) for u in np.linspace(0, 1, 101)]
    assert all(stepped_log.contains(v) for v in draws)
    assert sum(v < 1e-3 for v in draws) > 40  # half the unit interval is below 1e-3


def test_integer_log_scale_favours_small_values():
    dim = Integer("width", 1, 1000, log=True)
    draws = [dim.from_unit(u) for u in np.linspace(0, 1, 1000, endpoint=False)]
    assert min(draws) == 1 and max(draws) <= 1000
    assert np.median(draws) == pytest.approx(np.sqrt(1001), rel=0.05)


def test_categorical_is_coded_by_index():
    dim = Categorical("pool1", ["max", "avg"])
    assert dim.choices == ("max", "avg")
    assert dim.encode("avg") == 1.0 and dim.decode(0.2) == "max" and dim.decode(7) == "avg"
    assert dim.contains("max") and not dim.contains("sum") and not dim.contains(["max"])
    assert dim.snap("avg") == "avg"
    with pytest.raises(ValueError, match="pool1"):
        dim.snap("sum")


def test_choice_is_sorted_coded_by_value_and_snaps_to_nearest():
    dim = Choice("quant_bits", [32, 4, np.int64(16), 8])
    assert dim.values == (4, 8, 16, 32) and type(dim.values[2]) is int
    assert dim.encode(16) == 16.0 and dim.snap(11) == 8 and dim.snap(100) == 32
    assert dim.contains(8) and not dim.contains(12)
    assert [dim.from_unit((k + 0.5) / 4) for k in range(4)] == [4, 8, 16, 32]
    assert dim == Choice("quant_bits", (4, 8, 16, 32))


def test_dimensions_pickle_and_compare_by_value():
    for dim in ffnn_space().dimensions:
        assert dim.n_values  # fill any cached attributes before pickling
        assert pickle.loads(pickle.dumps(dim)) == dim


@pytest.mark.parametrize("make, field", [
    (lambda: Integer("neurons", 600, 50), "low"),
    (lambda: Integer("neurons", 50, 600, step=0), "step"),
    (lambda: Integer("neurons", 50, 600, step=-25), "step"),
    (lambda: Integer("neurons", 50.5, 600), "low"),
    (lambda: Integer("neurons", 50, 600, step=2.5), "step"),
    (lambda: Integer("neurons", 0, 600, log=True), "log"),
    (lambda: Integer("neurons", 1, 6, condition="num_layers"), "condition"),
    (lambda: Integer("", 1, 6), "name"),
    (lambda: Float("dr_ratio", 20.0, 1.0), "low"),
    (lambda: Float("dr_ratio", 1.0, 20.0, step=0), "step"),
    (lambda: Float("dr_ratio", 1.0, float("inf")), "high"),
    (lambda: Float("dr_ratio", 0.0, 1.0, log=True), "log"),
    (lambda: Categorical("pool", []), "choices"),
    (lambda: Categorical("pool", "max"), "choices"),
    (lambda: Categorical("pool", ["max", "max"]), "duplicate"),
    (lambda: Categorical("pool", [["max"], ["avg"]]), "hashable"),
    (lambda: Choice("quant_bits", []), "values"),
    (lambda: Choice("quant_bits", [4, 8, 8]), "duplicate"),
    (lambda: Choice("quant_bits", [4, "8"]), "Categorical"),
    (lambda: Choice("quant_bits", [4, True]), "values"),
])
def test_bad_dimensions_raise_naming_the_dimension(make, field):
    with pytest.raises(ValueError) as error:
        make()
    message = str(error.value)
    assert field in message
    assert any(name in message for name in ("neurons", "dr_ratio", "pool", "quant_bits",
                                            "name"))


def test_bad_condition_raises():
    with pytest.raises(ValueError, match="parent"):
        Condition("", 2)
    with pytest.raises(ValueError, match="num_layers"):
        Condition("num_layers", "2")


# ----------------------------------------------------------------------------- the space
@pytest.mark.parametrize("make, words", [
    (lambda: SearchSpace([]), ["at least one"]),
    (lambda: SearchSpace([Integer("a", 1, 2), "b"]), ["dimensions[1]"]),
    (lambda: SearchSpace([Integer("a", 1, 2), Integer("a", 1, 3)]), ["duplicate", "'a'"]),
    (lambda: SearchSpace([Integer("b", 1, 2, condition=Condition("a", 2))]),
     ["b", "'a'", "does not exist"]),
    (lambda: SearchSpace([Integer("b", 1, 2, condition=Condition("a", 2)),
                          Integer("a", 1, 3)]), ["b", "'a'", "after"]),
    (lambda: SearchSpace([Categorical("a", ["x", "y"]),
                          Integer("b", 1, 2, condition=Condition("a", 1))]),
     ["b", "categorical"]),
    (lambda: SearchSpace([Integer("a", 1, 3),
                          Integer("b", 1, 2, condition=Condition("a", 4))]),
     ["b", "never"]),
    (lambda: SearchSpace([Integer("a", 1, 3)], constants={"a": 2}), ["constants", "'a'"]),
    (lambda: SearchSpace([Integer("a", 1, 3)], constants=[("e", 1)]), ["constants"]),
])
def test_bad_spaces_raise_naming_the_problem(make, words):
    with pytest.raises(ValueError) as error:
        make()
    assert all(word in str(error.value) for word in words), str(error.value)


def test_encode_has_fixed_length_and_zeros_for_inactive_dimensions():
    space = ffnn_space()
    config = {"num_layers": 2, "neurons_1": 100, "neurons_2": 575, "neurons_3": None,
              "dr_method": 5, "dr_ratio": 2.3, "quant_bits": 8}
    vector = space.encode(config)
    assert vector.dtype == np.float64 and vector.shape == (space.n_dims,) == (10,)
    assert vector.tolist() == [2, 100, 575, 0, 0, 0, 0, 4, 2.3, 8]  # method 5: index 4


def test_encode_many_matches_encode_row_by_row():
    space = lenet_space()
    configs = space.random(50, rng=3)
    matrix = space.encode_many(configs)
    assert matrix.shape == (50, space.n_dims)
    assert all(np.array_equal(matrix[i], space.encode(c)) for i, c in enumerate(configs))


@pytest.mark.parametrize("name", sorted(ALL_PRESETS))
def test_decode_inverts_encode_on_sampled_configs(name):
    space = ALL_PRESETS[name]
    configs = space.sobol(256, seed=1) + space.random(64, rng=2)
    vectors = space.encode_many(configs)
    assert [space.decode(v) for v in vectors] == configs
    assert all(set(c) == set(space.names) | set(space.constants) for c in configs)


def test_decode_snaps_off_grid_vectors_and_follows_snapped_parents():
    space = ffnn_space()
    config = space.decode([2.6, 61, 99, 401, 1, 2, 3, 0.2, 2.34, 9])
    assert config == {"num_layers": 3, "neurons_1": 50, "neurons_2": 100, "neurons_3": 400,
                      "neurons_4": None, "neurons_5": None, "neurons_6": None,
                      "dr_method": 1, "dr_ratio": 2.3, "quant_bits": 8}
    with pytest.raises(ValueError, match="shape"):
        space.decode([1, 2, 3])
    with pytest.raises(ValueError, match="dr_ratio"):
        space.decode([1, 50, 0, 0, 0, 0, 0, 1, np.nan, 8])


def test_validate_names_the_bad_key():
    space = tiny_conditional_space()
    good = {"layers": 2, "width_1": 1, "width_2": 2, "act_3": None, "epochs": 3}
    space.validate(good)
    cases = [
        ({**good, "width_1": 3}, "'width_1'"),
        ({**good, "width_2": None}, "'width_2'"),
        ({k: v for k, v in good.items() if k != "width_2"}, "'width_2'"),
        ({**good, "layers": "2"}, "'layers'"),
        ({**good, "epochs": 4}, "'epochs'"),
        ({**good, "widht_1": 1}, "'widht_1'"),
        ({**good, "layers": 3}, "'act_3'"),
    ]
    for config, key in cases:
        assert not space.contains(config)
        with pytest.raises(ValueError, match=key):
            space.validate(config)
    with pytest.raises(ValueError, match="config #1"):
        space.encode_many([good, cases[0][0]])
    with pytest.raises(ValueError, match="mapping"):
        space.validate([("layers", 2)])


def test_inactive_values_are_ignored_and_constants_may_be_omitted():
    space = tiny_conditional_space()
    sampled_by_unconditional_tune = {"layers": 1, "width_1": 2, "width_2": 2, "act_3": "gelu"}
    assert space.contains(sampled_by_unconditional_tune)
    assert space.key(sampled_by_unconditional_tune) == (1, 2, None, None)
    assert space.encode(sampled_by_unconditional_tune).tolist() == [1, 2, 0, 0]


def test_key_is_hashable_and_canonical():
    space = ffnn_space()
    config = space.sobol(1, seed=0)[0]
    noisy = {**config, "dr_ratio": config["dr_ratio"] + 1e-12, "quant_bits": np.int64(32)
             if config["quant_bits"] == 32 else config["quant_bits"]}
    assert space.key(noisy) == space.key(config)
    assert hash(space.key(config)) == hash(space.key(noisy))
    assert len(space.key(config)) == space.n_dims
    inactive = [i for i, name in enumerate(space.names) if config[name] is None]
    assert all(space.key(config)[i] is None for i in inactive)


def test_constants_ride_along_but_are_not_encoded():
    space = tiny_conditional_space()
    assert space.n_dims == 4 and "epochs" not in space.names
    produced = (space.sobol(8, seed=0) + space.random(8, rng=0)
                + [space.mutate(space.random(1, rng=1)[0], 0.5, rng=2),
                   space.decode(np.ones(4))])
    assert all(config["epochs"] == 3 for config in produced)
    space.constants["epochs"] = 99  # a copy: the space keeps its constant
    assert space.constants == {"epochs": 3}


def test_cardinality_counts_conditional_configs():
    space = tiny_conditional_space()
    assert space.cardinality == 18 == len(brute_force_keys(space))
    assert SearchSpace([Float("lr", 0.1, 1.0)]).cardinality == float("inf")
    # Table 2: sum over L of 23^L neuron grids, times 11 methods, 191 ratios, 4 bit widths
    expected = sum(23 ** layers for layers in range(1, 7)) * 11 * 191 * 4
    assert ffnn_space().cardinality == expected


# ----------------------------------------------------------------------------- sampling
def test_sobol_pool_is_deterministic_and_seed_dependent():
    space = ffnn_space()
    assert space.sobol(64, seed=7) == space.sobol(64, seed=7)
    assert space.sobol(64, seed=7) != space.sobol(64, seed=8)


def test_ffnn_sobol_pool_has_2048_distinct_balanced_members_on_the_grid():
    space = ffnn_space()
    pool = space.sobol(2048, seed=0)
    assert len(pool) == 2048 and len({space.key(c) for c in pool}) == 2048
    vectors = space.encode_many(pool)  # raises unless every value is on its grid
    assert [space.decode(v) for v in vectors] == pool  # values are already snapped
    for config in pool:
        assert [config[f"neurons_{i}"] is not None for i in range(1, 7)] == \
            [config["num_layers"] >= i for i in range(1, 7)]
    for dim in space.dimensions:
        values = [c[dim.name] for c in pool if c[dim.name] is not None]
        assert min(values) == dim.decode(dim.code_at(0))
        assert max(values) == dim.decode(dim.code_at(dim.n_values - 1))
    # Sobol balance: every layer count (and every bit width) gets an equal share.
    for name, n_values in (("num_layers", 6), ("quant_bits", 4)):
        counts = collections.Counter(c[name] for c in pool)
        assert len(counts) == n_values
        assert max(counts.values()) - min(counts.values()) <= 3


def test_ffnn_dr_method_is_a_category_and_dr_ratio_log_scaled():
    space = ffnn_space(n_features=40)
    assert isinstance(space["dr_method"], Categorical)
    assert space["dr_method"].choices == tuple(range(1, 12))
    assert space["dr_ratio"].log and space["dr_ratio"].max_value == 15.9
    ratios = np.array([c["dr_ratio"] for c in space.sobol(2048, seed=0)])
    # log-uniform on [1, 15.9]: the geometric middle, 4.0, splits the draws in half
    assert 0.45 < np.mean(ratios < 4.0) < 0.55
    assert 0.15 < np.mean(ratios < 1.7) < 0.25  # a linear scale gives 5 %


def test_sobol_returns_first_seen_unique_configs_when_asked_for_a_non_power_of_two():
    space = resnet_space()
    pool = space.sobol(100, seed=3)
    assert len(pool) == 100 and len({space.key(c) for c in pool}) == 100
    assert pool == space.sobol(128, seed=3)[:100]


def test_small_space_returns_each_of_its_configs_once():
    space = SearchSpace([Integer("a", 1, 3), Categorical("b", ["x", "y"])])
    pool = space.sobol(100, seed=0)
    assert len(pool) == 6
    assert {(c["a"], c["b"]) for c in pool} == set(itertools.product([1, 2, 3], ["x", "y"]))
    conditional = tiny_conditional_space()
    assert {conditional.key(c) for c in conditional.sobol(50, seed=4)} == \
        brute_force_keys(conditional)


def test_sobol_fills_hard_to_reach_configs_by_enumeration(monkeypatch):
    # Three log-scaled dims: the corner (10, 10, 10) has 6e-5 of the probability mass, so
    # a short Sobol budget misses some configs and enumeration must complete the pool.
    monkeypatch.setattr(search_space_module, "_MIN_SOBOL_BUDGET", 1)
    space = SearchSpace([Integer(name, 1, 10, log=True) for name in "abc"])
    pool = space.sobol(1000, seed=0)
    assert len({space.key(c) for c in pool}) == 1000 == len(pool)


def test_random_is_seeded_and_inside_the_space():
    space = lenet_space()
    assert space.random(20, np.random.default_rng(5)) == space.random(20, 5)
    assert space.random(20, 5) != space.random(20, 6)
    assert space.random(0, 5) == []
    assert all(space.contains(c) for c in space.random(200, 9))
    for bad_rng in (None, 1.5, True, "seed", -1):
        with pytest.raises(ValueError, match="rng"):
            space.random(3, bad_rng)
    with pytest.raises(ValueError, match="n must"):
        space.random(-1, 0)
    with pytest.raises(ValueError, match="seed"):
        space.sobol(4, seed=-1)


# ----------------------------------------------------------------------------- mutation
def changed_keys(space, before, after):
    return [n for n, a, b in zip(space.names, space.key(before), space.key(after)) if a != b]


@pytest.mark.parametrize("name", ["ffnn", "lenet", "resnet18"])
def test_mutate_always_changes_something_and_stays_in_the_space(name):
    space = ALL_PRESETS[name]
    parents = space.sobol(100, seed=2)
    before = [dict(c) for c in parents]
    for prob in (0.0, 0.1, 1.0):
        children = space.mutate_many(parents, prob, np.random.default_rng(0))
        # encode_many validates every child; encodings are injective on valid configs
        changed = (space.encode_many(children) != space.encode_many(parents)).any(axis=1)
        assert changed.all()
    assert parents == before  # the parents themselves are untouched
    single = space.mutate(parents[0], 0.1, 3)
    space.validate(single)
    assert changed_keys(space, parents[0], single)


def test_mutate_many_is_seeded_and_refuses_spaces_with_nothing_to_change():
    space = ffnn_space()
    parents = space.sobol(50, seed=0)
    assert space.mutate_many(parents, 0.2, 4) == space.mutate_many(parents, 0.2, 4)
    assert space.mutate_many(parents, 0.2, 4) != space.mutate_many(parents, 0.2, 5)
    assert space.mutate_many([], 0.2, 4) == []
    pinned = SearchSpace([Integer("a", 5, 5), Choice("b", [8])])
    with pytest.raises(ValueError, match="config #0 has no active dimension"):
        pinned.mutate_many([{"a": 5, "b": 8}, {"a": 5, "b": 8}], 0.5, 0)


def test_mutate_with_probability_one_changes_every_dimension():
    space = lenet_space()
    config = space.random(1, 0)[0]
    child = space.mutate(config, 1.0, 1)
    assert changed_keys(space, config, child) == list(space.names)


def test_mutate_with_probability_zero_changes_exactly_one_top_level_choice():
    space = lenet_space()  # unconditional: nothing else can follow the one change
    config = space.random(1, 0)[0]
    assert all(len(changed_keys(space, config, space.mutate(config, 0.0, seed))) == 1
               for seed in range(30))


def test_mutate_is_deterministic_per_seed():
    space = ffnn_space()
    config = space.sobol(1, seed=0)[0]
    assert space.mutate(config, 0.3, 11) == space.mutate(config, 0.3, 11)
    children = {space.key(space.mutate(config, 0.3, seed)) for seed in range(10)}
    assert len(children) > 5


def test_mutation_that_adds_layers_gives_new_layers_valid_widths():
    space = ffnn_space()
    config = {"num_layers": 1, "neurons_1": 300, "dr_method": 2, "dr_ratio": 1.5,
              "quant_bits": 16}
    grown = [c for c in (space.mutate(config, 0.5, seed) for seed in range(60))
             if c["num_layers"] > 1]
    assert grown
    for child in grown:
        widths = [child[f"neurons_{i}"] for i in range(1, 7)]
        assert all(w is not None and space["neurons_2"].contains(w)
                   for w in widths[:child["num_layers"]])
        assert all(w is None for w in widths[child["num_layers"]:])


def test_mutate_rejects_bad_input():
    space = ffnn_space()
    config = space.sobol(1, seed=0)[0]
    for prob in (-0.1, 1.5, "0.5", None):
        with pytest.raises(ValueError, match="prob"):
            space.mutate(config, prob, 0)
    with pytest.raises(ValueError, match="neurons_1"):
        space.mutate({**config, "neurons_1": 51}, 0.5, 0)
    single = SearchSpace([Integer("a", 3, 3)], constants={"b": 1})
    with pytest.raises(ValueError, match="cannot be mutated"):
        single.mutate({"a": 3}, 0.5, 0)


# ----------------------------------------------------------------------------- presets
def test_ffnn_preset_matches_table_2():
    space = ffnn_space()
    assert space.names == ("num_layers", *(f"neurons_{i}" for i in range(1, 7)),
                           "dr_method", "dr_ratio", "quant_bits")
    assert space["num_layers"] == Integer("num_layers", 1, 6)
    assert space["neurons_1"] == Integer("neurons_1", 50, 600, step=25)
    for i in range(2, 7):
        assert space[f"neurons_{i}"] == Integer(f"neurons_{i}", 50, 600, step=25,
                                                condition=Condition("num_layers", i))
    assert space["neurons_1"].n_values == 23
    assert space["dr_method"] == Categorical("dr_method", tuple(range(1, 12)))
    assert space["dr_ratio"] == Float("dr_ratio", 1.0, 20.0, step=0.1, log=True)
    assert space["quant_bits"] == Choice("quant_bits", (4, 8, 16, 32))
    assert space.constants == {}


def test_ffnn_optional_reduction_lets_a_config_train_on_the_raw_features(digits):
    space = ffnn_space(64, optional_reduction=True)
    assert space.names == ("num_layers", *(f"neurons_{i}" for i in range(1, 7)),
                           "reduce_features", "dr_method", "dr_ratio", "quant_bits")
    assert space["reduce_features"] == Integer("reduce_features", 0, 1)
    switch = Condition("reduce_features", 1)
    assert space["dr_method"] == Categorical("dr_method", tuple(range(1, 12)), condition=switch)
    assert space["dr_ratio"] == Float("dr_ratio", 1.0, 20.0, step=0.1, log=True,
                                      condition=switch)
    configs = space.sobol(64, seed=0)
    raw = [c for c in configs if c["reduce_features"] == 0]
    reduced = [c for c in configs if c["reduce_features"] == 1]
    assert len(raw) == len(reduced) == 32
    assert all(c["dr_method"] is None and c["dr_ratio"] is None for c in raw)
    assert all(c["dr_method"] in range(1, 12) and c["dr_ratio"] >= 1 for c in reduced)
    assert prepare_for_config(digits, raw[0]).input_shape == (64,)
    projected = next(c for c in reduced if c["dr_method"] <= 5)  # fast to fit
    assert prepare_for_config(digits, projected).input_shape == (
        reduced_dimension(64, projected["dr_ratio"]),)
    assert ffnn_space(64).names == ffnn_space(64, optional_reduction=False).names
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="optional_reduction must be true or false"):
            ffnn_space(64, optional_reduction=bad)


def test_each_algorithm_gets_its_preset():
    """The default algorithm's presets leave the precision to each trial."""
    assert preset_for_algorithm("ffnn", "steerage", n_features=40) == ffnn_space(
        40, optional_reduction=True).without(["quant_bits"])
    assert preset_for_algorithm("ffnn", "paper", n_features=40) == ffnn_space(40)
    assert preset_for_algorithm("ffnn", "steerage", optional_reduction=False) == \
        ffnn_space().without(["quant_bits"])
    assert preset_for_algorithm("lenet", "steerage", image_size=8) == \
        lenet_space(8).without(["quant_bits"])
    assert preset_for_algorithm("lenet", "paper", image_size=8) == lenet_space(8)


def test_ffnn_dr_ratio_cap_keeps_at_least_three_features():
    assert max_dr_ratio(16) == 6.3  # Letter: the paper used "up to 6x"
    assert ffnn_space(16)["dr_ratio"] == Float("dr_ratio", 1.0, 6.3, step=0.1, log=True)
    assert max_dr_ratio(784) == 20.0 and max_dr_ratio(64) == 20.0
    for n_features in (2, 3, 5, 16, 40, 59, 60, 61):
        cap = max_dr_ratio(n_features)
        assert 1.0 <= cap <= 20.0 and round(cap * 10) == pytest.approx(cap * 10)
        kept = min(3, n_features)
        assert round(n_features / cap) >= kept
        assert cap == 20.0 or round(n_features / round(cap + 0.1, 1)) < kept
    for bad in (1, 0, 2.5, True, "16"):
        with pytest.raises(ValueError, match="n_features"):
            ffnn_space(bad)


@pytest.mark.parametrize("size, fc", [
    (14, [(135, 180), (60, 120), (40, 85)]),
    (21, [(375, 500), (100, 220), (50, 120)]),
    (28, [(540, 720), (100, 250), (50, 150)]),
])
def test_lenet_preset_matches_table_6(size, fc):
    space = lenet_space(size)
    assert space.names == ("image_filter", "kernel_size", "conv1_filters", "pool1",
                           "conv2_filters", "pool2", "fc1", "fc2", "fc3", "quant_bits")
    assert space["image_filter"] == Integer("image_filter", 1, 6)
    assert space["kernel_size"] == Choice("kernel_size", (3, 5))
    assert space["conv1_filters"] == Integer("conv1_filters", 5, 10)
    assert space["conv2_filters"] == Integer("conv2_filters", 15, 20)
    assert space["pool1"] == Categorical("pool1", ("max", "avg"))
    assert space["pool2"] == Categorical("pool2", ("max", "avg"))
    for i, (low, high) in enumerate(fc, 1):
        assert space[f"fc{i}"] == Integer(f"fc{i}", low, high, step=5)
    assert space["quant_bits"] == Choice("quant_bits", (4, 8, 16, 32))
    assert space.constants == {"image_size": size}


@pytest.mark.parametrize("size", [8, 32, 7, 4])
def test_lenet_other_image_sizes_grow_each_bound_as_table_6_does(size):
    """Each bound follows bound_14 * (side / 14) ** k, k fitted from sides 14 and 28;
    the result is on the grid of 5, at least 10 wide, and never narrower than the 10
    classes (the pixel-ratio rule before gave fc3 5-15 at 8x8)."""
    ranges = lenet_fc_ranges(size)
    for (low, high), at_14, at_28 in zip(ranges, lenet_fc_ranges(14), lenet_fc_ranges(28)):
        assert low % 5 == 0 and high % 5 == 0 and low >= 5 and high - low >= 10
        exact = [b14 * (size / 14) ** np.log2(b28 / b14) for b14, b28 in zip(at_14, at_28)]
        assert abs(low - exact[0]) <= 2.5
        assert high - low == 10 or abs(high - exact[1]) <= 2.5
    assert all(low >= 10 for low, _ in ranges[1:])
    assert lenet_space(size).constants == {"image_size": size}
    assert lenet_fc_ranges(8) == ((45, 60), (40, 65), (35, 55))
    # fc1 takes the flattened maps and grows with the pixel count, as 14 -> 28 does
    assert lenet_fc_ranges(32)[0] == (705, 940)
    for bad in (0, 28.0, "28", True):
        with pytest.raises(ValueError, match="image_size"):
            lenet_space(bad)


def test_resnet_preset_matches_table_8():
    space = resnet_space()
    assert space["image_filter"] == Integer("image_filter", 1, 6)
    assert space["image_size"] == Choice("image_size", (24, 32))
    for i in range(1, 5):
        assert space[f"blocks_{i}"] == Integer(f"blocks_{i}", 2, 6)
    grids = {"conv1_filters": (56, 98, 8, 96), "conv2_filters": (56, 98, 8, 96),
             "conv3_filters": (112, 196, 16, 192), "conv4_filters": (224, 392, 32, 384),
             "conv5_filters": (448, 784, 64, 768)}
    for name, (low, high, step, top) in grids.items():
        assert space[name] == Integer(name, low, high, step=step)
        assert space[name].max_value == top and space[name].n_values == 6
    assert space["pooling"] == Categorical("pooling", ("max", "avg"))
    assert space["fc_layers"] == Integer("fc_layers", 1, 2)
    assert space["quant_bits"] == Choice("quant_bits", (4, 8, 16, 32))
    assert space.n_dims == 14 and space.constants == {}


def test_resnet18_fixes_two_blocks_per_stage_and_depth_covers_18_to_50():
    fixed = get_preset("resnet18")
    assert fixed == resnet_space(fixed_depth=True)
    assert fixed.constants == {f"blocks_{i}": 2 for i in range(1, 5)}
    assert not any(name.startswith("blocks") for name in fixed.names)
    assert {resnet_depth(c) for c in fixed.sobol(32, seed=0)} == {18}
    depths = {resnet_depth(dict(zip([f"blocks_{i}" for i in range(1, 5)], blocks)))
              for blocks in itertools.product(range(2, 7), repeat=4)}
    assert depths == set(range(18, 51, 2))
    assert {resnet_depth(c) for c in resnet_space().sobol(256, seed=0)} <= depths
    with pytest.raises(ValueError, match="blocks_3"):
        resnet_depth({"blocks_1": 2, "blocks_2": 2, "blocks_4": 2})
    with pytest.raises(ValueError, match="fixed_depth"):
        resnet_space(fixed_depth="yes")


def test_get_preset_by_name_with_options():
    assert PRESET_NAMES == ("ffnn", "lenet", "resnet", "resnet18")
    assert get_preset("ffnn", n_features=16) == ffnn_space(16)
    assert get_preset("lenet", image_size=8) == lenet_space(8)
    with pytest.raises(ValueError, match="ffnn.*lenet.*resnet.*resnet18"):
        get_preset("vgg")
    with pytest.raises(ValueError, match="image_sise"):
        get_preset("lenet", image_sise=8)
    with pytest.raises(ValueError, match="fixed_depth"):
        get_preset("resnet18", fixed_depth=False)


def test_presets_compare_equal_and_pickle():
    for space in ALL_PRESETS.values():
        clone = pickle.loads(pickle.dumps(space))
        assert clone == space and clone.sobol(16, seed=0) == space.sobol(16, seed=0)
    assert ffnn_space() != ffnn_space(16)
    assert dataclasses.replace(ffnn_space()["neurons_2"], condition=None) != \
        ffnn_space()["neurons_2"]
