"""Paper mode: the STEERAGE global search exactly as Algorithms 1 and 2 describe it.

The search runs in rounds, each a batch of architectures trained in parallel:

====  ============  =============================================================
round phase         members
====  ============  =============================================================
0     ``initial``   random members of a seeded Sobol pool (``plan.initial``)
1..I  ``iterative`` the ``iter_count`` unseen pool members the predictor ranks best
I+1   ``final``     the ``final_count`` best distinct unseen architectures found by
                    EES over the predictor
====  ============  =============================================================

The predictor (``AccuracyPredictor``, one boosted-tree model) is refitted on every
observation before each round after the first. ``propose`` returns None ("wait")
while a round waits for results: round r + 1 is drawn once round r has been handed out
and ``refit_fraction`` of it has reported. With the default 1.0 every proposal depends
only on the seed and the results, not on their arrival order or the concurrency.
Fewer than 2 successful observations cannot fit the predictor; the next round is then
drawn at random from the pool.

Final round: EES starts from the seen architecture the predictor ranks best (plus
random ones) and admits no other seen architecture, so its winner is predicted at
least as good as everything trained, and the final round trains only new
architectures. Failed trials count as done for their round and never enter a fit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from steerage_ray.evolution import EvolutionResult, evolutionary_search
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.space import SearchSpace
from steerage_ray.strategies.history import (COMPLETED, DONE, FINAL, INITIAL, ITERATIVE,
                                             RUNNING, WARM_START, History, Proposal,
                                             round_scores, score_row)
from steerage_ray.strategies.plan import SearchPlan

logger = logging.getLogger(__name__)


@dataclass
class _Round:
    index: int
    phase: str
    queue: list[tuple[np.ndarray, float]]  # (codes, predicted score) still to hand out
    size: int
    fit_seconds: float = math.nan
    select_seconds: float = math.nan


class PaperStrategy:
    """Algorithms 1 and 2 in rounds; see the module docstring."""

    name = "paper"

    def __init__(self, space: SearchSpace, plan: SearchPlan, pool: np.ndarray, *,
                 seed: int = 0, ees_population: int = 100, ees_generations: int = 200,
                 mutation_prob: float = 0.1, refit_fraction: float = 1.0,
                 constraint=None, predictor_params: dict | None = None) -> None:
        self.space, self.plan, self.pool, self.seed = space, plan, pool, seed
        self.ees_population, self.ees_generations = ees_population, ees_generations
        self.mutation_prob = mutation_prob
        self.refit_fraction = refit_fraction
        self.constraint = constraint
        self.predictor_params = dict(predictor_params or {})
        self.rounds: list[_Round] = []
        self.predictor: AccuracyPredictor | None = None
        self.ees_result: EvolutionResult | None = None
        self.finished = False
        self._rng = np.random.default_rng(seed)

    def describe(self) -> str:
        return self.plan.describe()

    # ------------------------------------------------------------------ proposing
    def propose(self, history: History) -> Proposal | str | None:
        """The next member of the current round, None while the round waits, or DONE
        once the final round is handed out."""
        self._advance(history)
        if self.finished:
            return DONE
        for current in self.rounds:  # earlier rounds hold requeued architectures
            while current.queue:
                codes, predicted = current.queue.pop(0)
                if history.seen(codes.tobytes()):  # became known (warm start) after the draw
                    continue
                config = self.space.decode_codes(codes[None, :])[0]
                return Proposal(config, codes, current.phase, current.index, predicted)
        return DONE if self.finished else None

    def handed_out(self, history: History) -> bool:
        """Whether the final round has been handed out."""
        return self.finished

    def after_proposal(self, history: History) -> None:
        """The final round ends the search as soon as it is handed out."""
        self._advance(history)

    def _advance(self, history: History) -> None:
        """Open the next round once the current one is handed out and has reported."""
        while not self.finished:
            if not self.rounds:
                self._open_round(history, 0)
                continue
            current = self.rounds[-1]
            if current.queue:
                return
            if current.phase == FINAL:
                self.finished = True
                return
            members = [r for r in history.records if r.round == current.index
                       and r.phase != WARM_START]
            reported = sum(1 for r in members if r.status != RUNNING)
            if reported < math.ceil(self.refit_fraction * len(members) - 1e-9):
                return
            self._open_round(history, current.index + 1)

    def _open_round(self, history: History, index: int) -> None:
        plan = self.plan
        size = plan.round_size(index)
        phase = INITIAL if index == 0 else ITERATIVE if index <= plan.iterations else FINAL
        started = time.perf_counter()
        fit_seconds = math.nan
        if index > 0:
            self.predictor = self._fit_predictor(history)
            fit_seconds = time.perf_counter() - started
        if phase == FINAL:
            queue = self._final_candidates(history, size)
        elif self.predictor is None:
            queue = self._random_pool_members(history, size)
        else:
            queue = self._best_pool_members(history, size)
        select_seconds = time.perf_counter() - started - (0.0 if index == 0 else fit_seconds)
        self.rounds.append(_Round(index, phase, queue, len(queue), fit_seconds,
                                  select_seconds))
        what = {INITIAL: "random Sobol-pool members",
                ITERATIVE: "pool members the predictor ranks best",
                FINAL: "EES winners"}[phase]
        timing = "" if phase == INITIAL else (
            f"; predictor refit {fit_seconds:.2f}s, "
            f"{'EES' if phase == FINAL else 'ranking'} {select_seconds:.2f}s")
        logger.info("global search round %d of %d (%s): training %d %s%s", index + 1,
                    plan.iterations + 2, phase, len(queue), what, timing)

    def _unseen_pool(self, history: History) -> np.ndarray:
        """Indices of pool members never proposed nor observed."""
        return np.array([i for i, row in enumerate(self.pool)
                         if not history.seen(row.tobytes())], dtype=int)

    def _random_pool_members(self, history: History, size: int) -> list:
        unseen = self._unseen_pool(history)
        picks = self._rng.choice(unseen, size=min(size, len(unseen)), replace=False)
        return [(self.pool[i], math.nan) for i in sorted(picks)]

    def _best_pool_members(self, history: History, size: int) -> list:
        """Algorithm 1, steps (1)-(2): the unseen pool members predicted best."""
        unseen = self._unseen_pool(history)
        predicted = self.predictor.predict(self.pool[unseen]) if len(unseen) else []
        order = np.argsort(-np.asarray(predicted), kind="stable")[:size]
        return [(self.pool[unseen[i]], float(predicted[i])) for i in order]

    def _final_candidates(self, history: History, size: int) -> list:
        """Algorithm 2: the best distinct unseen architectures EES finds.

        EES starts from the seen architecture the predictor scores best plus random
        ones, and never admits any other seen architecture. Being elitist, its winner
        therefore scores at least as high as every seen (feasible) architecture. The
        seed itself is not proposed again; if EES yields fewer than ``size`` unseen
        architectures, the best unseen pool members fill the round.
        """
        if self.predictor is None:
            return self._random_pool_members(history, size)
        seed_codes = self._best_seen(history)
        seen = [r.codes for r in history.records]
        exclude = [row for row in seen
                   if seed_codes is None or row.tobytes() != seed_codes.tobytes()]
        try:
            self.ees_result = evolutionary_search(
                self.space, self.predictor.predict, population=self.ees_population,
                generations=self.ees_generations, mutation_prob=self.mutation_prob,
                seed=self.seed, constraint=self.constraint,
                exclude=self.space.decode_codes(np.array(exclude)) if exclude else None,
                initial=None if seed_codes is None
                else self.space.decode_codes(seed_codes[None, :]))
        except ValueError as error:  # e.g. a tiny space whose every architecture is seen
            logger.warning("SteerageSearcher: EES found no admissible architecture (%s); "
                           "the final round takes the best unseen pool members", error)
        chosen: list[tuple[np.ndarray, float]] = []
        if self.ees_result is not None:
            codes = self.space.encode_many(self.ees_result.population)
            for row, score in zip(codes, self.ees_result.scores):
                if len(chosen) < size and not history.seen(row.tobytes()):
                    chosen.append((row, float(score)))
        picked = {row.tobytes() for row, _ in chosen}
        fallback = [item for item in self._best_pool_members(history, size)
                    if item[0].tobytes() not in picked]
        return chosen + fallback[: size - len(chosen)]

    # ------------------------------------------------------------------ predictor
    @staticmethod
    def _ordered(history: History) -> list:
        """Warm starts first, then proposals in order: a fixed order, so that the same
        observations always give the same (bagged) predictor and the same ties."""
        records = history.records
        return [r for r in records if r.phase == WARM_START] + \
               [r for r in records if r.phase != WARM_START]

    def _observed(self, history: History) -> list:
        return [r for r in self._ordered(history) if r.status == COMPLETED]

    def _fit_predictor(self, history: History) -> AccuracyPredictor | None:
        observed = self._observed(history)
        if len(observed) < 2:
            logger.warning("SteerageSearcher: %d successful observations, too few to fit "
                           "the predictor; choosing the next round at random", len(observed))
            return None
        X = np.array([r.codes for r in observed])
        y = np.array([r.label for r in observed])
        return AccuracyPredictor(**{"seed": self.seed, **self.predictor_params}).fit(X, y)

    def _best_seen(self, history: History) -> np.ndarray | None:
        """The proposed or observed (feasible) architecture the predictor scores best."""
        seen = self._ordered(history)
        if self.constraint is not None:
            seen = [r for r in seen if self.constraint.is_feasible(r.config)]
        if not seen:
            return None
        codes = np.array([r.codes for r in seen])
        return codes[int(np.argmax(self.predictor.predict(codes)))]

    # ------------------------------------------------------------------ reporting
    def round_scores(self, history: History) -> pd.DataFrame:
        """Per round: how well the predictor ranked it *before* training.

        ``kendall_tau`` compares the predictions made when round r was drawn (by a
        predictor fitted on rounds < r) with round r's actual labels: a held-out score.
        Also ``n_scored``, ``fit_seconds`` (predictor refit) and ``select_seconds``
        (ranking the pool, or EES for the final round).
        """
        return round_scores([
            score_row(current.index, current.phase, current.size,
                      [r for r in history.records
                       if r.round == current.index and r.phase != WARM_START],
                      current.fit_seconds, current.select_seconds)
            for current in self.rounds])
