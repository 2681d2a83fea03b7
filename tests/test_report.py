"""The report from plain DataFrames (no Ray): the paper-style summary table, its text
form and the three plots."""

import numpy as np
import pandas as pd
from PIL import Image

from steerage_ray.report import (
    PLOT_FILES,
    format_summary,
    selection_note,
    summary_table,
    write_plots,
)

BASELINE = {"test_acc": 0.9749, "params": 17_200, "flops": 34_000}
WINNER = {"test_acc": 0.9721, "params": 53_100, "flops": 105_300}
PARETO = pd.DataFrame({"scheme": ["A", "B", "C", "D"], "step": [3, 5, 2, 4],
                       "val_acc": [0.95, 0.98, 0.98, 0.9760],
                       "test_acc": [0.96, 0.9777, 0.97, 0.9749],
                       "params": [2_700, 13_100, 20_000, 1_600],
                       "flops": [5_000, 25_600, 40_000, 3_100]})


def test_the_summary_has_baseline_gs_and_the_two_ls_points():
    table = summary_table(BASELINE, WINNER, PARETO)
    assert list(table["method"]) == ["Baseline", "STEERAGE (GS)",
                                     "STEERAGE (GS+LS, most accurate)",
                                     "STEERAGE (GS+LS, compact)"]
    # most accurate: B and C tie at the best validation accuracy, B has fewer params;
    # compact: the smallest within 0.5 points of it, D (0.4 points below)
    assert list(table["point"]) == ["-", "-", "B:5", "D:4"]
    assert list(table["params"]) == [17_200, 53_100, 13_100, 1_600]
    np.testing.assert_allclose(table["compression"],
                               [1.0, 17_200 / 53_100, 17_200 / 13_100, 17_200 / 1_600])
    text = format_summary(table)
    assert "97.49%" in text and "17.2k" in text and "105.3k" in text and "1.3x" in text
    assert "10.8x" in text


def test_each_model_is_sized_at_its_precision():
    """The baseline is the float network; a result without ``quant_bits`` (a directory
    written before results had one) has no size."""
    table = summary_table(BASELINE, {**WINNER, "quant_bits": 8},
                          PARETO.assign(quant_bits=[4, 8, 16, 4]))
    assert list(table["bits"]) == [32, 8, 8, 4]
    np.testing.assert_allclose(table["size_kb"], [68.8, 53.1, 13.1, 0.8])
    assert "68.80" in format_summary(table) and "0.80" in format_summary(table)
    unsized = summary_table(BASELINE, WINNER, PARETO)
    assert unsized["size_kb"].iloc[1:].isna().all()
    assert list(format_summary(unsized).splitlines()[2].split()[-4:-2]) == ["-", "-"]


def test_the_compact_point_follows_the_tolerance():
    for tolerance, point in ((0.0, "B:5"), (0.003, "B:5"), (0.005, "D:4"), (1.0, "D:4")):
        table = summary_table(BASELINE, WINNER, PARETO, tolerance=tolerance)
        assert table["point"].iloc[-1] == point, tolerance
    assert "within 2 points" in selection_note(0.02)


def test_missing_parts_leave_their_rows_out():
    table = summary_table(None, WINNER, None)
    assert list(table["method"]) == ["STEERAGE (GS)"] and "compression" not in table
    assert "STEERAGE (GS)" in format_summary(table)
    assert summary_table(BASELINE, None, PARETO.iloc[:0])["method"].tolist() == ["Baseline"]


def test_the_three_plots_are_written(tmp_path):
    trials = pd.DataFrame({"phase": ["initial", "initial", "iterative", "final"],
                           "val_acc": [0.9, np.nan, 0.95, 0.96],
                           "test_acc": [0.89, np.nan, 0.94, 0.95],
                           "params": [1000, 2000, 3000, 4000],
                           "predicted": [np.nan, np.nan, 0.93, 0.97]})
    paths = write_plots(tmp_path, trials, PARETO, BASELINE)
    assert set(paths) == set(PLOT_FILES)
    for path in paths.values():
        with Image.open(path) as image:
            assert image.format == "PNG"
    without_predictions = trials.drop(columns="predicted")
    assert write_plots(tmp_path / "b", without_predictions, None)["best_so_far"].is_file()
