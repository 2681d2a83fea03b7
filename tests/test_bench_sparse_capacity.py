"""benchmarks/bench_sparse_capacity.py: its pruning ends within the parameter budget, and
its dense reference is the paper tables' baseline MLP (tiny epochs)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sparse_capacity as bench  # noqa: E402


def test_gradual_pruning_ends_within_the_budget_and_is_measured():
    data = bench.mnist1d(0)
    params, val_acc, test_acc = bench.gradual_pruning(data, (64, 32), 400, 0, (1, 3, 1))
    dense = 40 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    assert 300 <= params <= 400 < dense  # pruned to the budget, not far below it
    assert 0.1 < val_acc <= 1.0 and 0.1 < test_acc <= 1.0  # better than chance (10 classes)


def test_the_dense_reference_is_the_baseline_mlp():
    params, val_acc, test_acc = bench.dense_baseline(bench.mnist1d(0), 0, 1)
    assert params == 6930 and 0.1 < test_acc <= 1.0
