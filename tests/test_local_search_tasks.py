"""run_local_search: schemes as Ray tasks on the session's real Ray (2 CPUs), argument
checks before any task starts, and the scheme body and Pareto set without Ray."""

import pandas as pd
import pytest
import torch

from steerage_ray.local_search import Candidate, LocalSearchResult, run_local_search
from steerage_ray.local_search.schemes import build_scheme_options, run_one_scheme
from steerage_ray.models import build_model
from steerage_ray.training import TrainSettings, train_model

CONFIG = {"num_layers": 2, "neurons_1": 64, "neurons_2": 32, "dr_method": None,
          "dr_ratio": None, "quant_bits": 8}
QUICK = TrainSettings(epochs=4, batch_size=32, lr=0.01, weight_decay=1e-4)


@pytest.fixture(scope="module")
def candidate(digits):
    model = build_model("ffnn", CONFIG, digits.input_shape, digits.n_classes, seed=0)
    train_model(model, digits, TrainSettings(epochs=5, batch_size=64))
    return Candidate("ffnn", CONFIG, model.state_dict())


@pytest.mark.slow
def test_schemes_run_in_parallel_and_return_a_pareto_set(ray_session, digits, candidate):
    result = run_local_search(candidate, digits, schemes=("B", "C"), iterations=3,
                              settings=QUICK, seed=0,
                              scheme_options={"C": {"initial_pruning_ratio": 0.7}})
    assert isinstance(result, LocalSearchResult)
    assert result.failures == {}
    assert set(result.histories) == {"B", "C"}
    assert all(len(h) == 4 for h in result.histories.values())

    tasks = result.tasks.set_index("scheme")
    assert (tasks["device"] == "cpu").all()
    assert tasks["pid"].nunique() == 2
    latest_start, earliest_end = tasks["started"].max(), tasks["finished"].min()
    assert latest_start < earliest_end, f"tasks did not overlap:\n{result.tasks}"

    pareto = result.pareto
    assert list(pareto.columns) == ["scheme", "step", "operation", "val_acc", "test_acc",
                                    "quant_bits", "quant_test_acc", "params", "flops"]
    assert (pareto["quant_bits"] == 8).all()  # the candidate's
    assert pareto["quant_test_acc"].between(0, 1).all()
    assert pareto["params"].is_monotonic_increasing
    assert pareto["val_acc"].is_monotonic_increasing and pareto["val_acc"].is_unique
    points = pd.concat([h.assign(scheme=s) for s, h in result.histories.items()])
    for _, point in points.iterrows():  # nothing outside the set dominates a member ...
        dominated_by = pareto[(pareto.val_acc >= point.val_acc) & (pareto.params <= point.params)]
        assert len(dominated_by), "a history point is better than the whole Pareto set"

    best = result.best()
    exported = result.export()
    assert exported.quant_bits == 8
    model = result.model(best["scheme"], int(best["step"]))
    x = torch.as_tensor(digits.X_test)
    torch.testing.assert_close(exported.module(x), model(x), rtol=1e-5, atol=1e-5)
    accuracy = (model(x).argmax(1).numpy() == digits.y_test).mean()
    assert accuracy == pytest.approx(best["test_acc"])


@pytest.mark.slow
def test_a_failing_scheme_is_reported_and_the_others_returned(ray_session, digits, candidate):
    result = run_local_search(candidate, digits, schemes=("A", "C"), iterations=1,
                              settings=QUICK,
                              fault_injection={"A": "injected failure for the test"})
    assert result.failures == {"A": "RuntimeError: injected failure for the test"}
    assert list(result.scheme_results) == ["C"]
    assert set(result.pareto["scheme"]) == {"C"}
    assert list(result.tasks["scheme"]) == ["C"]


def test_a_scheme_task_trains_on_the_cpu_when_ray_hands_out_a_fake_gpu(monkeypatch, digits,
                                                                       candidate):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what Ray sets for a GPU task
    options = build_scheme_options(("C",), None, None, None, 0.0)["C"]
    result, info = run_one_scheme("C", candidate, digits, 1, QUICK, options, 0, 1, None)
    assert info["device"] == "cpu"
    assert len(result.history) == 2


def test_untrained_candidates_are_trained_first(digits):
    untrained = Candidate("ffnn", CONFIG)
    options = build_scheme_options(("C",), None, None, None, 0.0)["C"]
    result, _ = run_one_scheme("C", untrained, digits, 1, QUICK, options, 0, 1, None)
    assert result.history.loc[0, "val_acc"] > 0.8


@pytest.mark.parametrize("kwargs, message", [
    (dict(schemes=("B", "D")), r"unknown scheme\(s\) \['D'\].*valid schemes: \('A', 'B', 'C'\)"),
    (dict(schemes=("nest",)), r"unknown scheme\(s\) \['nest'\] for family 'ffnn'"),
    (dict(schemes=("B", "B")), "must not repeat"),
    (dict(schemes="C"), "schemes must be a non-empty sequence of names"),
    (dict(schemes=()), "schemes must be a non-empty sequence of names"),
    (dict(growth_ratio=1.5), "growth_ratio must be a number strictly between 0 and 1"),
    (dict(pruning_ratio=0.0), "pruning_ratio must be a number strictly between 0 and 1"),
    (dict(scheme_options={"C": {"initial_pruning_ratio": 1}}),
     "initial_pruning_ratio must be a number strictly between 0 and 1"),
    (dict(scheme_options={"A": {"pruning_ratio": 0.2}}, schemes=("C",)),
     r"scheme_options given for scheme\(s\) \['A'\] that are not run"),
    (dict(scheme_options={"C": {"no_such_knob": 1}}), "scheme_options\\['C'\\].*no_such_knob"),
    (dict(iterations=0), "iterations must be an integer >= 1"),
    (dict(fault_injection={"nest": "x"}), "fault_injection names scheme"),
    (dict(family="lenet"), "family='lenet' does not match candidate.family='ffnn'"),
])
def test_bad_arguments_fail_before_any_task_starts(digits, candidate, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_local_search(candidate, digits, **{"schemes": ("C",), **kwargs})


def test_candidate_dataset_mismatches_are_clear(digits, candidate):
    reduced = digits.with_features(digits.X_train[:, :32], digits.X_val[:, :32],
                                   digits.X_test[:, :32])
    with pytest.raises(ValueError, match="state_dict does not fit.*prepare_for_config"):
        run_local_search(candidate, reduced, schemes=("C",))
    with pytest.raises(ValueError, match="input_shape for family 'lenet'"):
        run_local_search({"family": "lenet", "config": {"image_size": 8}}, digits)
    with pytest.raises(ValueError, match="candidate family must be one of"):
        run_local_search({"family": "resnet", "config": {}}, digits)
    with pytest.raises(ValueError, match="candidate has unknown key"):
        run_local_search({"family": "ffnn", "config": CONFIG, "weights": None}, digits)

