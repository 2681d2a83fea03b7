"""The default search's parts, without Ray: predictor features, one-step neighbourhoods,
the boosted-tree ensemble, the candidate set and the background refit queue."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest

from steerage_ray.space import (Categorical, Choice, Condition, Float, Integer, SearchSpace,
                                ffnn_space)
from steerage_ray.space.features import FeatureMap
from steerage_ray.space.neighbours import Neighbourhood
from steerage_ray.strategies.candidates import CandidateSet
from steerage_ray.strategies.refits import RefitQueue
from steerage_ray.strategies.surrogate import BoostedEnsemble


def mixed_space() -> SearchSpace:
    return SearchSpace([
        Integer("layers", 1, 3),
        Integer("width_1", 16, 256, step=16),
        Integer("width_2", 16, 256, step=16, condition=Condition("layers", 2)),
        Integer("width_3", 16, 256, step=16, condition=Condition("layers", 3)),
        Float("lr", 1e-4, 1e-1, log=True),
        Choice("bits", (4, 8, 16, 32)),
        Categorical("pool", ("max", "avg", "none")),
    ], constants={"family": "ffnn"})


def test_features_one_hot_categories_log_scale_and_mark_inactive_as_missing():
    space = mixed_space()
    features = FeatureMap(space)
    assert features.names == ("layers", "width_1", "width_2", "width_3", "log(lr)", "bits",
                              "pool=max", "pool=avg", "pool=none")
    config = {"layers": 2, "width_1": 32, "width_2": 64, "width_3": None, "lr": 0.01,
              "bits": 8, "pool": "avg"}
    row = features(space.encode_many([config]))[0]
    assert row[:3].tolist() == [2, 32, 64]
    assert np.isnan(row[3])  # width_3 is inactive with 2 layers
    assert row[4] == pytest.approx(np.log(0.01))
    assert row[5] == 8 and row[6:].tolist() == [0, 1, 0]


def test_neighbours_change_exactly_one_active_dimension_and_stay_in_the_space():
    space = mixed_space()
    rng = np.random.default_rng(0)
    config = {"layers": 2, "width_1": 128, "width_2": 64, "width_3": None, "lr": 0.01,
              "bits": 8, "pool": "avg"}
    codes = space.encode_many([config])
    neighbours = Neighbourhood(space).of(codes, rng)
    assert len(neighbours) > 10
    configs = space.decode_codes(neighbours)
    for neighbour in configs:
        space.validate(neighbour)
        changed = [n for n in space.names if neighbour[n] != config[n]]
        # one dimension, plus the children a new layer count (de)activates
        assert changed[0] in space.names
        assert len(changed) == 1 or changed[0] == "layers"
    # every other value of a small categorical / choice dimension is a neighbour
    assert {c["pool"] for c in configs} == {"max", "avg", "none"}
    assert {c["bits"] for c in configs} == {4, 8, 16, 32}
    # a new third layer gets a width; fewer layers drop the inactive widths
    three = [c for c in configs if c["layers"] == 3]
    assert three and all(c["width_3"] is not None for c in three)
    assert all(c["width_2"] is None for c in configs if c["layers"] == 1)
    # moves on a large grid are local (plus a couple of random jumps)
    widths = sorted({c["width_1"] for c in configs if c["width_1"] != 128})
    assert {112, 144, 96, 160} <= set(widths)


def test_ensemble_is_seeded_spread_out_and_clipped_to_the_observed_range():
    space = ffnn_space(n_features=64)
    rng = np.random.default_rng(1)
    codes = space.encode_many(space.random(60, rng))
    features = FeatureMap(space)
    X = features(codes)
    y = 0.5 + 0.05 * codes[:, 0] + 0.01 * rng.standard_normal(len(codes))
    first = BoostedEnsemble(seed=3).fit(X, y)
    second = BoostedEnsemble(seed=3).fit(X, y)
    new = features(space.encode_many(space.random(200, rng)))
    members = first.predict_members(new)
    assert members.shape == (first.n_members, 200)
    assert np.array_equal(members, second.predict_members(new))
    mean, std = first.predict(new)
    assert (std > 0).mean() > 0.9  # bootstrap members disagree somewhere
    low, high = y.min(), y.max()
    pad = 0.1 * (high - low)
    assert members.min() >= low - pad - 1e-12 and members.max() <= high + pad + 1e-12
    trend = np.corrcoef(first.predict(X)[0], y)[0, 1]
    assert trend > 0.8
    bounded = BoostedEnsemble(seed=3, bounds=(0.0, 0.6)).fit(X, y)
    assert bounded.predict_members(new).max() <= 0.6


def test_refitting_some_members_keeps_the_others():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.random(40)
    original = BoostedEnsemble(n_members=4, seed=0).fit(X, y)
    before = original.predict_members(X)
    ensemble = original.copy()  # a refit of the copy leaves the original as it was
    ensemble.fit(np.vstack([X, X[:5]]), np.concatenate([y, y[:5] + 1.0]), members=[1])
    after = ensemble.predict_members(X)
    assert not np.allclose(before[1], after[1])
    for member in (0, 2, 3):  # same trees; only the shared clip range may widen
        assert np.allclose(np.clip(before[member], *ensemble.range_), after[member])
    assert np.array_equal(original.predict_members(X), before)


def test_a_pickled_ensemble_predicts_the_same_and_a_refit_member_gets_a_new_text():
    rng = np.random.default_rng(1)
    X, y = rng.random((30, 3)), rng.random(30)
    ensemble = BoostedEnsemble(n_members=3, seed=0).fit(X, y).serialise()
    texts = list(ensemble._texts)
    restored = pickle.loads(pickle.dumps(ensemble))
    assert np.array_equal(restored.predict_members(X), ensemble.predict_members(X))
    refitted = restored.copy().fit(np.vstack([X, X[:4]]),
                                   np.concatenate([y, y[:4] + 1.0]), members=[2])
    again = pickle.loads(pickle.dumps(refitted))
    assert again._texts[:2] == texts[:2] and again._texts[2] != texts[2]
    assert np.array_equal(again.predict_members(X), refitted.predict_members(X))
    assert restored._texts == texts  # the copy's refit left the original's texts alone


def test_candidate_set_skips_known_architectures_and_copies_without_the_seen_ones():
    candidates = CandidateSet(n_dims=2, n_members=3)
    rows = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [2.0, 2.0], [3.0, 0.0]])
    known = {np.array([2.0, 2.0]).tobytes()}
    candidates.add(rows, lambda key, row: key not in known,
                   lambda codes: np.tile(codes[:, 0], (3, 1)))
    assert candidates.codes.tolist() == [[0.0, 1.0], [1.0, 1.0], [3.0, 0.0]]
    assert candidates.predictions.tolist() == [[0.0, 1.0, 3.0]] * 3
    subset = candidates.unseen(frozenset({np.array([0.0, 1.0]).tobytes(),
                                          np.array([9.0, 9.0]).tobytes()}))
    assert subset.codes.tolist() == [[1.0, 1.0], [3.0, 0.0]]
    assert subset.predictions.tolist() == [[1.0, 3.0]] * 3
    assert len(candidates) == 3  # the original is left as it is
    subset.add(np.array([[0.0, 1.0], [3.0, 0.0]]), lambda key, row: True,
               lambda codes: np.tile(codes[:, 0], (3, 1)))
    assert subset.codes.tolist() == [[1.0, 1.0], [3.0, 0.0], [0.0, 1.0]]  # keys rebuilt


def slow_append(state, snapshot):
    """A refit step whose duration varies; records the thread it ran on."""
    time.sleep(0.02 * (snapshot % 3))
    return (state or ()) + ((snapshot, threading.current_thread().name),)


def test_refit_queue_applies_in_order_keeps_a_lag_and_recomputes_after_pickling():
    queue = RefitQueue(slow_append)
    for snapshot in range(5):
        queue.submit(snapshot)
    state = queue.settle(keep=1)  # all but the newest applied
    assert [s for s, _ in state] == [0, 1, 2, 3] and queue.pending == [4]
    assert {thread for _, thread in state} != {threading.current_thread().name}
    restored = pickle.loads(pickle.dumps(queue))  # the worker and its futures stay behind
    assert restored.pending == [4] and restored.state == state
    assert [s for s, _ in restored.settle()] == [s for s, _ in queue.settle()] == [0, 1, 2, 3, 4]
    assert queue.settle(keep=1) == queue.settle() and not queue.pending


def test_the_idle_hook_follows_the_newest_refit_and_never_holds_up_its_result():
    hooked, released, done = [], threading.Event(), threading.Event()

    def hook(state):
        released.wait(10)  # a slow hook: the result must not wait for it
        hooked.append(state)
        done.set()

    queue = RefitQueue(slow_append, when_idle=hook)
    for snapshot in range(3):
        queue.submit(snapshot)
    assert [s for s, _ in queue.settle()] == [0, 1, 2] and not hooked
    released.set()
    assert done.wait(10)
    assert [s for s, _ in hooked[-1]] == [0, 1, 2]  # the newest state, after the others


def failing_step(state, snapshot):
    raise ValueError(f"refit {snapshot} failed")


def test_a_failed_refit_raises_where_its_result_is_needed():
    queue = RefitQueue(failing_step)
    queue.submit(7)
    with pytest.raises(ValueError, match="refit 7 failed"):
        queue.settle()
