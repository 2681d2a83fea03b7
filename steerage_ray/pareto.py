"""Sets of trained models traded off by accuracy and size: the Pareto front, and the one
rule that picks a point from a set (local-search steps, the Pareto set of a run, the
model a report shows or an export writes). Needs only pandas: no Ray, no torch.

Points are DataFrame rows with ``val_acc`` (validation accuracy, higher is better) and
``params`` (fewer is better). Only validation accuracy chooses, never test accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated in (``val_acc`` higher, ``params`` lower), sorted by params.

    Of rows with identical accuracy and size, the first is kept.
    """
    ordered = points.sort_values(["params", "val_acc"], ascending=[True, False], kind="stable")
    ordered = ordered.drop_duplicates(["params", "val_acc"])
    best_so_far = -np.inf
    keep = []
    for accuracy in ordered["val_acc"]:
        keep.append(accuracy > best_so_far)
        best_so_far = max(best_so_far, accuracy)
    return ordered[keep].reset_index(drop=True)


def select_point(points: pd.DataFrame, tolerance: float = 0.0) -> pd.Series:
    """The point to pick: among the rows whose validation accuracy is within
    ``tolerance`` of the best, the one with the fewest parameters; ties go to the higher
    validation accuracy, then to the earlier row. The row's index label is its ``name``.

    ``tolerance=0`` picks the most accurate point (ties to fewer parameters);
    ``tolerance=1`` picks the smallest (ties to the more accurate).
    """
    if points.empty:
        raise ValueError("there is no point to select from an empty set")
    eligible = points[points["val_acc"] >= points["val_acc"].max() - tolerance - 1e-12]
    ranked = eligible.sort_values(["params", "val_acc"], ascending=[True, False],
                                  kind="stable")
    return ranked.iloc[0]


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``values`` that no other row dominates, every column
    "higher is better" (negate the columns to minimise). Duplicates of a non-dominated
    row are all kept. For any number of objectives (the multi-objective global search)."""
    values = np.asarray(values, dtype=float)
    keep = [i for i, row in enumerate(values)
            if not np.any(np.all(values >= row, axis=1) & np.any(values > row, axis=1))]
    return np.array(keep, dtype=int)


#: The compact choice's default tolerance: 0.5 points of validation accuracy.
DEFAULT_SELECT_TOLERANCE = 0.005

#: The named choices of a set, as :func:`choose` takes them.
CHOICES = ("most_accurate", "compact", "smallest")


def choose(points: pd.DataFrame, which: str,
           tolerance: float = DEFAULT_SELECT_TOLERANCE) -> pd.Series:
    """A named :func:`select_point` choice, the one the report shows and export writes:

    - ``"most_accurate"``: the highest validation accuracy (ties to fewer parameters);
    - ``"compact"``: the smallest point whose validation accuracy is within ``tolerance``
      (a fraction: 0.005 is 0.5 points) of the most accurate's;
    - ``"smallest"``: the fewest parameters (ties to the more accurate).
    """
    if which not in CHOICES:
        raise ValueError(f"which must be one of {CHOICES}, got {which!r}")
    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a fraction of accuracy in [0, 1], got {tolerance!r}")
    return select_point(points, {"most_accurate": 0.0, "compact": tolerance,
                                 "smallest": 1.0}[which])


#: How local search picks its start from a global-search front (``--ls-from``), besides
#: a row index of ``pareto_front.csv``.
FRONT_PICKS = ("knee", "most-accurate", "smallest")


def knee(front: pd.DataFrame, maximise: list[str], minimise: list[str]) -> int:
    """Position of the front member nearest the utopia point (best of every objective)
    in normalised objective space: each objective scaled to [0, 1] over the front,
    minimised ones (sizes, latency: positive, spanning orders of magnitude) on a log10
    scale first. Ties go to the earlier row."""
    columns = [front[name].to_numpy(float) for name in maximise]
    columns += [-np.log10(np.maximum(front[name].to_numpy(float), 1e-300))
                for name in minimise]
    scaled = [(c - c.min()) / (c.max() - c.min()) if c.max() > c.min()
              else np.ones_like(c) for c in columns]
    distance = np.sqrt(sum((1.0 - s) ** 2 for s in scaled))
    return int(np.argmin(distance))


def front_member(front: pd.DataFrame, which: str | int, minimise: list[str]) -> int:
    """Position in ``front`` (rows with ``val_acc`` and the ``minimise`` objectives) of
    the member ``which`` names: ``knee``, ``most-accurate`` (ties to fewer params),
    ``smallest`` (fewest ``params``, else the first minimised objective; ties to the more
    accurate) or a row index."""
    if front.empty:
        raise ValueError("the global-search front is empty: no architecture trained")
    if isinstance(which, int) or (isinstance(which, str) and which.isdigit()):
        if int(which) >= len(front):
            raise ValueError(f"--ls-from {which}: the front has rows 0..{len(front) - 1}")
        return int(which)
    if which == "knee":
        return knee(front, ["val_acc"], minimise)
    size = "params" if "params" in front else minimise[0]
    order = (["val_acc", size], [False, True]) if which == "most-accurate" else \
        ([size, "val_acc"], [True, False]) if which == "smallest" else None
    if order is None:
        raise ValueError(f"--ls-from must be one of {', '.join(FRONT_PICKS)} or a row "
                         f"index of pareto_front.csv, got {which!r}")
    ranked = front.reset_index(drop=True).sort_values(order[0], ascending=order[1],
                                                      kind="stable")
    return int(ranked.index[0])
