"""Pareto sets: the front, and the one rule that picks a point from a set."""

import numpy as np
import pandas as pd
import pytest

from steerage_ray.pareto import pareto_front, select_point


def test_pareto_front_keeps_only_non_dominated_points():
    points = pd.DataFrame({"scheme": list("ABCDE"), "step": range(5),
                           "operation": ["x"] * 5,
                           "val_acc": [0.90, 0.95, 0.93, 0.95, 0.97],
                           "test_acc": np.zeros(5), "params": [100, 300, 400, 200, 900],
                           "flops": np.zeros(5)})
    front = pareto_front(points)
    assert list(front["scheme"]) == ["A", "D", "E"]


def _points(val_acc, params):
    return pd.DataFrame({"step": range(len(params)), "val_acc": val_acc, "params": params})


def test_select_point_picks_the_most_accurate_then_the_smallest():
    points = _points([0.90, 0.97, 0.95, 0.97], [100, 900, 300, 500])
    assert select_point(points).name == 3  # best accuracy; of those the fewest params
    assert select_point(points, tolerance=0.02).name == 2  # within 0.02: fewest params
    assert select_point(points, tolerance=1.0).name == 0  # the smallest


def test_select_point_breaks_ties_to_accuracy_then_to_the_earlier_row():
    points = _points([0.90, 0.95, 0.95, 0.95], [100, 100, 100, 300])
    assert select_point(points, tolerance=1.0).name == 1
    assert select_point(points).name == 1


def test_select_point_needs_points():
    with pytest.raises(ValueError, match="empty"):
        select_point(_points([], []))


def test_select_point_with_tolerance_prefers_the_smallest_close_model():
    history = pd.DataFrame({"step": [0, 1, 2, 3], "val_acc": [0.95, 0.97, 0.965, 0.97],
                            "params": [1000, 800, 300, 900]})
    assert select_point(history).name == 1  # best accuracy, fewer params on a tie
    assert select_point(history, tolerance=0.006).name == 2  # within 0.6 points: smallest
    assert select_point(history, tolerance=0.03).name == 2


def test_choose_names_the_report_rows():
    from steerage_ray.pareto import DEFAULT_SELECT_TOLERANCE, choose

    points = _points([0.970, 0.9755, 0.980, 0.981], [300, 800, 2000, 9000])
    assert DEFAULT_SELECT_TOLERANCE == 0.005
    assert choose(points, "most_accurate").name == 3
    assert choose(points, "compact").name == 2       # >= 0.976: 0.9755 is just out
    assert choose(points, "compact", 0.0115).name == 0
    assert choose(points, "smallest").name == 0
    with pytest.raises(ValueError, match="which must be one of"):
        choose(points, "best")
    with pytest.raises(ValueError, match="tolerance must be"):
        choose(points, "compact", 1.5)
