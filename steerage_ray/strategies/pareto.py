"""Several objectives at once: the guided search aimed at a Pareto front.

STEERAGE wants networks that are accurate *and* small. With objectives such as
``val_acc`` (max) and ``params`` (min), the search keeps the guided strategy's machinery
(Sobol design, bootstrap ensembles, candidates from neighbours / random / EES) and
changes what a proposal maximises:

* **trained objectives** (reported by trials) each get their own ensemble; **computed
  objectives** (known before training: parameters, FLOPs, a latency estimate, any
  ``cost_fn(config)``) are evaluated exactly, never learned;
* every objective becomes a utility in [0, 1], higher better: a trained one as the
  quantile its (rank-warped) prediction stands for, a computed one by its rank among
  the architectures known and the candidates;
* each proposal draws fresh weights from the simplex and maximises the augmented
  Chebyshev scalarisation of one ensemble member's utilities (ParEGO with Thompson
  sampling): concurrent proposals aim at different parts of the front;
* local candidates are the neighbours of the current Pareto front's members.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import norm, rankdata

from steerage_ray.pareto import non_dominated
from steerage_ray.strategies.candidates import CandidateSet
from steerage_ray.strategies.guided import Fitted, GuidedStrategy, Snapshot, _normal_scores
from steerage_ray.strategies.history import History

RHO = 0.05  # weight of the sum in the augmented Chebyshev scalarisation
MAX_FRONT_LEADERS = 12


class ParetoStrategy(GuidedStrategy):
    """The default mode with several objectives; see the module docstring.

    ``trained`` names the objectives trials report (the first is each record's
    ``label``); ``computed(codes) -> (m, k)`` gives the other objectives, signed so that
    higher is better, for code rows. Records carry every objective in ``values``.
    Each refit fits one further ensemble per trained objective after the first
    (``Fitted.extra``). Every 5th guided proposal is a design point to the end
    (``explore_until=None``): the bound of the single-objective search was chosen on
    single-objective benchmarks only.
    """

    name = "steerage-pareto"

    def __init__(self, space, plan, *, trained: Sequence[str],
                 computed: Callable[[np.ndarray], np.ndarray] | None = None,
                 n_computed: int = 0, explore_until: int | None = None,
                 **options) -> None:
        super().__init__(space, plan, explore_until=explore_until, **options)
        self.trained = tuple(trained)
        self.computed, self.n_computed = computed, n_computed

    # ------------------------------------------------------------------ objectives
    def _objectives(self, values: Sequence[dict], labels: Sequence[float],
                    codes: np.ndarray) -> np.ndarray:
        """(m, objectives) signed values: trained ones, then computed ones."""
        trained = np.array([[value.get(name, label if i == 0 else np.nan)
                             for i, name in enumerate(self.trained)]
                            for value, label in zip(values, labels)])
        if not self.n_computed:
            return trained
        return np.hstack([trained, self._costs(codes)])

    def _costs(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.computed(codes), dtype=float).reshape(len(codes), -1)

    def _front_rows(self, values: Sequence[dict], labels: Sequence[float],
                    codes: np.ndarray) -> np.ndarray:
        """Indices of the rows no other row dominates (rows with every trained
        objective finite)."""
        known = np.flatnonzero([all(np.isfinite(v.get(n, label)) for n in self.trained)
                                for v, label in zip(values, labels)])
        if not len(known):
            return known
        matrix = self._objectives([values[i] for i in known], [labels[i] for i in known],
                                  codes[known])
        return known[non_dominated(matrix)]

    def front(self, history: History) -> list:
        """The completed records no other completed record dominates."""
        done = history.completed()
        if not done:
            return []
        rows = self._front_rows([r.values for r in done], [r.label for r in done],
                                np.array([r.codes for r in done]))
        return [done[i] for i in rows]

    # ------------------------------------------------------------------ model
    def _refit_extra(self, snapshot: Snapshot, X: np.ndarray, weights: np.ndarray) -> tuple:
        """One ensemble per further trained objective, fitted where it has 3 values."""
        models = []
        for i, name in enumerate(self.trained[1:]):
            model = self._ensemble(self.seed + 1 + i)
            values = np.array([value.get(name, np.nan) for value in snapshot.values])
            finite = np.isfinite(values)
            if finite.sum() >= 3:
                model.fit(X[finite], _normal_scores(values[finite]), weights[finite])
            models.append(model)
        return tuple(models)

    def _leaders(self, model, snapshot: Snapshot, rng: np.random.Generator) -> np.ndarray:
        """The best by the first objective, and members of the Pareto front (at most
        ``MAX_FRONT_LEADERS``, drawn at random)."""
        best = super()._leaders(model, snapshot, rng)
        front = self._front_rows(snapshot.values, snapshot.labels, snapshot.codes)
        if len(front) > MAX_FRONT_LEADERS:
            front = np.sort(rng.choice(front, MAX_FRONT_LEADERS, replace=False))
        return np.concatenate([best, snapshot.codes[front]]) if len(front) else best

    # ------------------------------------------------------------------ acquisition
    def _pick(self, history: History, fitted: Fitted, exploit: bool):
        """ParEGO: a fresh weight vector per proposal, one member's utilities."""
        candidates, live = self._live_candidates(history, fitted)
        if not len(candidates):
            return None
        member = None if exploit else int(self._rng.integers(self.n_members))
        utilities = self._utilities(history, fitted, candidates, member)
        n_objectives = utilities.shape[1]
        weights = self._rng.dirichlet(np.ones(n_objectives))
        deficit = weights * (1.0 - utilities)
        score = -(deficit.max(axis=1) + RHO * deficit.sum(axis=1))
        best = self._argmax(np.where(live, score, -np.inf))
        return (candidates.codes[best].copy(),
                fitted.unwarp(float(candidates.predictions[:, best].mean())))

    def _utilities(self, history: History, fitted: Fitted, candidates: CandidateSet,
                   member: int | None) -> np.ndarray:
        """(candidates, objectives) utilities in [0, 1], higher better."""
        first = (candidates.predictions.mean(axis=0) if member is None
                 else candidates.predictions[member])
        columns = [norm.cdf(first)]
        X = self.features(candidates.codes) if fitted.extra else None
        for model in fitted.extra:
            if not model.members_:
                columns.append(np.full(len(candidates), 0.5))
                continue
            predicted = (model.predict_members(X).mean(axis=0) if member is None
                         else model.predict_member(member, X))
            columns.append(norm.cdf(predicted))
        if self.n_computed:
            known = np.array([r.codes for r in history.records])
            costs = self._costs(np.concatenate([candidates.codes, known]))
            ranks = np.column_stack([rankdata(c) for c in costs.T]) / len(costs)
            columns.extend(ranks[: len(candidates)].T)
        return np.column_stack(columns)
