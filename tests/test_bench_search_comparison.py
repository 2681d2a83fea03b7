"""benchmarks/bench_search_comparison.py runs each of its searchers end to end, on a
tiny budget (it once broke unnoticed when the trial configs changed)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_search_comparison as bench  # noqa: E402

from steerage_ray.data import load_dataset  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["steerage", "steerage_reproducible", "optuna_tpe"])
def test_a_run_of_each_searcher_is_measured(ray_session, searcher):
    row = bench.one_run(searcher, load_dataset("digits"), budget=4, epochs=1, seed=0)
    assert row["searcher"] == searcher and row["to_the_end"] == 4
    assert 0.1 < row["best_val_acc"] <= 1.0 and 0.0 <= row["idle_fraction"] < 1.0
    assert row["wall_seconds"] > 0 and row["train_seconds"] > 0
    if searcher.startswith("steerage"):  # never a network twice; its final pick scored
        assert row["distinct"] == 4 and math.isfinite(row["final_val_acc"])
    else:
        assert 1 <= row["distinct"] <= 4
