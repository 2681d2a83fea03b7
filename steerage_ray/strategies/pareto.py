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
from steerage_ray.strategies.guided import GuidedStrategy, _fidelity_weights, _normal_scores
from steerage_ray.strategies.history import History
from steerage_ray.strategies.surrogate import BoostedEnsemble

RHO = 0.05  # weight of the sum in the augmented Chebyshev scalarisation
MAX_FRONT_LEADERS = 12


class ParetoStrategy(GuidedStrategy):
    """The default mode with several objectives; see the module docstring.

    ``trained`` names the objectives trials report (the first is each record's
    ``label``); ``computed(codes) -> (m, k)`` gives the other objectives, signed so that
    higher is better, for code rows. Records carry every objective in ``values``.
    """

    name = "steerage-pareto"

    def __init__(self, space, plan, *, trained: Sequence[str],
                 computed: Callable[[np.ndarray], np.ndarray] | None = None,
                 n_computed: int = 0, **options) -> None:
        super().__init__(space, plan, **options)
        self.trained = tuple(trained)
        self.computed, self.n_computed = computed, n_computed
        self.extra_models = [BoostedEnsemble(n_members=self.model.n_members,
                                             n_estimators=self.model.n_estimators,
                                             learning_rate=self.model.learning_rate,
                                             seed=self.seed + 1 + i)
                             for i in range(len(self.trained) - 1)]
        self._weights = None

    # ------------------------------------------------------------------ objectives
    def _objective_matrix(self, records) -> np.ndarray:
        """(m, objectives) signed values of records: trained ones, then computed ones."""
        trained = np.array([[r.values.get(name, r.label if i == 0 else np.nan)
                             for i, name in enumerate(self.trained)] for r in records])
        if not self.n_computed:
            return trained
        return np.hstack([trained, self._costs(np.array([r.codes for r in records]))])

    def _costs(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(self.computed(codes), dtype=float).reshape(len(codes), -1)

    def front(self, history: History) -> list:
        """The completed records no other completed record dominates."""
        done = [r for r in history.completed()
                if all(np.isfinite(r.values.get(n, r.label)) for n in self.trained)]
        if not done:
            return []
        return [done[i] for i in non_dominated(self._objective_matrix(done))]

    # ------------------------------------------------------------------ model
    def _follow(self, history: History) -> None:
        before = self._fitted_on
        super()._follow(history)  # the first trained objective, candidates, leaders
        if self._fitted_on == before or not self.extra_models:
            return
        done = history.completed()
        codes = np.array([r.codes for r in done])
        X = self.features(codes)
        weights = _fidelity_weights(np.array([r.fidelity for r in done], dtype=float))
        for model, name in zip(self.extra_models, self.trained[1:]):
            values = np.array([r.values.get(name, np.nan) for r in done])
            finite = np.isfinite(values)
            if finite.sum() >= 3:
                model.fit(X[finite], _normal_scores(values[finite]), weights[finite])

    def _refresh(self, history: History, codes=None, labels=None) -> None:
        """Rebuild the candidates around the Pareto front (not only the best label)."""
        super()._refresh(history, codes, labels)
        front = self.front(history)
        if len(front) > MAX_FRONT_LEADERS:
            picks = self._rng.choice(len(front), MAX_FRONT_LEADERS, replace=False)
            front = [front[i] for i in sorted(picks)]
        if front:
            self._add_local(history, np.array([r.codes for r in front]))

    # ------------------------------------------------------------------ acquisition
    def _pick(self, history: History, exploit: bool):
        """ParEGO: a fresh weight vector per proposal, one member's utilities."""
        cands = self.candidates
        if not len(cands):
            self._refresh(history)
            cands = self.candidates
            if not len(cands):
                return None
        live = np.array([not history.seen(row.tobytes()) for row in cands.codes], bool)
        if not live.any():
            return None
        member = None if exploit else int(self._rng.integers(self.model.n_members))
        utilities = self._utilities(history, cands.codes, member)
        n_objectives = utilities.shape[1]
        weights = self._rng.dirichlet(np.ones(n_objectives))
        deficit = weights * (1.0 - utilities)
        score = -(deficit.max(axis=1) + RHO * deficit.sum(axis=1))
        best = int(np.argmax(np.where(live, score, -np.inf)))
        return cands.codes[best].copy(), self._unwarp(float(cands.predictions[:, best].mean()))

    def _utilities(self, history: History, codes: np.ndarray,
                   member: int | None) -> np.ndarray:
        """(candidates, objectives) utilities in [0, 1], higher better."""
        first = (self.candidates.predictions.mean(axis=0) if member is None
                 else self.candidates.predictions[member])
        columns = [norm.cdf(first)]
        X = self.features(codes) if self.extra_models else None
        for model in self.extra_models:
            if not model.members_ or model.members_[0] is None:
                columns.append(np.full(len(codes), 0.5))
                continue
            predicted = (model.predict_members(X).mean(axis=0) if member is None
                         else model.predict_member(member, X))
            columns.append(norm.cdf(predicted))
        if self.n_computed:
            known = np.array([r.codes for r in history.records])
            costs = self._costs(np.concatenate([codes, known]))
            ranks = np.column_stack([rankdata(c) for c in costs.T]) / len(costs)
            columns.extend(ranks[: len(codes)].T)
        return np.column_stack(columns)
