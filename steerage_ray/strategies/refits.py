"""Model refits run one after another on a worker thread, off Tune's driver loop.

Tune calls ``on_trial_complete`` and then, at once, ``suggest`` for the slot that just
freed. A searcher that refits its model inside that ``suggest`` keeps the slot empty for
the whole refit; with trials of a few seconds that was a sixth of the run's slot-time.
``RefitQueue`` moves the refits to a worker thread:

* a refit is a pure step ``step(previous_state, snapshot) -> state``, where the
  snapshot is a copy of what the history held when the refit was asked for; the step
  never reads the live history, so its result does not depend on when it runs;
* refits run in the order they were submitted, each from the previous one's result
  (one worker thread), so the chain of states is a function of the snapshots alone;
* ``settle(keep)`` waits until at most ``keep`` submitted refits are unapplied and
  returns the newest applied state. With ``keep=1`` a proposal uses the model of the
  snapshot before the newest one: the newest refit runs while the freed slot trains.
  Which state a proposal uses therefore depends only on the order of results and
  proposals, never on timing, so the same event order gives the same search;
* pickling keeps the applied state and the unapplied snapshots (not the thread): a
  restored queue recomputes them and reaches the very states the original would have;
* ``when_idle(state)``, if given, runs on the worker after a refit that no later one
  follows yet, as a job of its own: the refit's result is ready before it, and a
  refit submitted meanwhile waits only for it. It is for work that pickling the state
  would otherwise do on the driver (the search's model text), done while the worker
  has nothing else to do; a driver whose trials end back to back keeps the worker busy
  with refits, and then pickling does that work itself, if it pickles at all.

LightGBM releases the GIL while it trains, so the driver loop keeps running during a
refit; on a machine whose cores all train, the refit takes its CPU share from them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class RefitQueue:
    """Ordered, deterministic background refits; see the module docstring."""

    def __init__(self, step: Callable[[Any, Any], Any],
                 when_idle: Callable[[Any], Any] | None = None) -> None:
        self.step = step
        self.when_idle = when_idle
        self.state: Any = None  # the newest applied state (None before the first)
        self.pending: list[Any] = []  # snapshots submitted and not applied, oldest first
        self._futures: list[Future] = []
        self._executor: ThreadPoolExecutor | None = None
        self._scheduled = 0  # refits given to the worker by this process

    def submit(self, snapshot: Any) -> None:
        """Start a refit on ``snapshot`` after the ones already submitted."""
        self.pending.append(snapshot)
        self._schedule()

    def settle(self, keep: int = 0) -> Any:
        """Apply refits, oldest first (waiting for them), until at most ``keep`` are
        left unapplied; the newest applied state. A failed refit raises here."""
        self._schedule()
        while len(self.pending) > keep:
            self.state = self._futures.pop(0).result()
            self.pending.pop(0)
        return self.state

    def _schedule(self) -> None:
        """Give the worker every pending snapshot it has not got (all of them after a
        restore: futures are not pickled)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="steerage-refit")
        for snapshot in self.pending[len(self._futures):]:
            before = self._futures[-1] if self._futures else None
            self._scheduled += 1
            self._futures.append(self._executor.submit(self._run, before, self.state,
                                                       snapshot, self._scheduled))

    def _run(self, before: Future | None, applied: Any, snapshot: Any, number: int) -> Any:
        state = self.step(before.result() if before is not None else applied, snapshot)
        if self.when_idle is not None and number == self._scheduled:
            self._executor.submit(self.when_idle, state)
        return state

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_futures"], state["_executor"], state["_scheduled"] = [], None, 0
        return state
