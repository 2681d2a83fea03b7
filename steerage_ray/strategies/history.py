"""What a search knows: every architecture proposed or observed, and what it scored.

The strategies read the history and never change it; the Tune adapter
(``searchers.SteerageSearcher``) writes it as trials are proposed and report. Labels
are always "higher is better" (a ``mode="min"`` metric is negated on the way in), so
strategies never need to know the direction.

An architecture is identified by its canonical code row (``SearchSpace.encode_many``):
equal configurations have byte-identical codes, so ``key`` (the row's bytes) is the
de-duplication key everywhere: nothing already proposed, running or observed is ever
proposed again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from steerage_ray.predictor import rank_correlation

DONE = "done"  # a strategy's answer when nothing is left to propose
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"

# Phases a record can come from.
INITIAL, GUIDED, ITERATIVE, FINAL, WARM_START, GIVEN = (
    "initial", "guided", "iterative", "final", "warm_start", "given")


@dataclass(frozen=True)
class Proposal:
    """A strategy's answer: train ``config`` (a flat config of the space) next.

    ``phase`` and ``round`` say which part of the plan it belongs to (``round`` is
    the paper mode's round index, or the proposal's position in the guided mode);
    ``predicted`` is the predictor's score for it before training (NaN when the
    proposal was not predicted, e.g. in the initial design).
    """

    config: dict
    codes: np.ndarray = field(repr=False)
    phase: str
    round: int
    predicted: float = math.nan


@dataclass
class Record:
    """One architecture of the history (a proposal, a warm start or a given point)."""

    config: dict
    codes: np.ndarray = field(repr=False)
    phase: str
    round: int
    predicted: float = math.nan
    status: str = RUNNING
    label: float = math.nan  # best finite value reported, signed so higher is better
    fidelity: int = 0  # reports made (Tune's training_iteration)
    results: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)  # every objective, signed (several objectives)

    @property
    def key(self) -> bytes:
        return self.codes.tobytes()


class History:
    """Records in the order they entered the search (warm starts and proposals)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._keys: set[bytes] = set()

    def add(self, record: Record) -> Record:
        self.records.append(record)
        self._keys.add(record.key)
        return record

    def forget(self, record: Record) -> None:
        """Drop a record whose trial will never report (its architecture may come back)."""
        self.records.remove(record)
        self._keys.discard(record.key)

    def seen(self, key: bytes) -> bool:
        """True when an architecture was proposed, is running or was observed."""
        return key in self._keys

    @property
    def keys(self) -> set[bytes]:
        return set(self._keys)

    @property
    def n_proposed(self) -> int:
        """Proposals made by the strategy (warm starts and given points not counted)."""
        return sum(1 for r in self.records if r.phase not in (WARM_START, GIVEN))

    def completed(self) -> list[Record]:
        """Records with a finite label, in history order."""
        return [r for r in self.records if r.status == COMPLETED]

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(codes, labels, fidelities)`` of the completed records."""
        done = self.completed()
        if not done:
            return np.empty((0, 0)), np.empty(0), np.empty(0)
        return (np.array([r.codes for r in done]), np.array([r.label for r in done]),
                np.array([r.fidelity for r in done], dtype=float))


SCORE_COLUMNS = ["round", "phase", "size", "n_scored", "kendall_tau", "fit_seconds",
                 "select_seconds"]


def score_row(index: int, phase: str, size: int, records: list[Record],
              fit_seconds: float, select_seconds: float) -> dict:
    """How well predictions made before training ranked ``records`` (Kendall tau)."""
    done = [r for r in records if r.status == COMPLETED and math.isfinite(r.predicted)]
    return {"round": index, "phase": phase, "size": size, "n_scored": len(done),
            "kendall_tau": rank_correlation([r.label for r in done],
                                            [r.predicted for r in done]),
            "fit_seconds": fit_seconds, "select_seconds": select_seconds}


def round_scores(rows: list[dict]) -> pd.DataFrame:
    """``score_row`` rows as the table ``SteerageSearcher.round_scores`` shows."""
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
