"""A Tune scheduler wrapper that lets the global search's final phase train to its end.

``global_search`` takes any Tune trial scheduler (ASHA, median stopping) to stop
unpromising trials early, and the searcher learns from what they reached. The final
phase is different: its trial trains the search's answer (``best_config``, with the
final epochs), and a scheduler that compares it with the partly trained trials at its
first rung may stop it there. On MNIST-1D under ASHA's defaults that happened in 5 of
10 searches (benchmarks/RESULTS.md, "Searchers under ASHA early stopping"), leaving a
network trained for one epoch as the search's result.

:class:`SparingFinalPhase` passes every call to the user's scheduler and keeps its
decisions, except that it turns a ``STOP`` for a final-phase trial into ``CONTINUE``.
The scheduler still records that trial's results (ASHA counts them in its rungs). A
final-phase trial is known by its config: ``global_search`` adds ``FINAL_PHASE_KEY`` to
the final phase's configs when it is given a scheduler (the trainable ignores keys it
does not know). Schedulers that pause trials and stop them by other means (synchronous
HyperBand) are passed through as they are.
"""

from __future__ import annotations

from ray.tune.schedulers import TrialScheduler

FINAL_PHASE_KEY = "search_phase"
FINAL_PHASE = "final"


class SparingFinalPhase(TrialScheduler):
    """``scheduler``, except that it never stops a final-phase trial (module docstring)."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        super().__init__()
        self.scheduler = scheduler

    @property
    def metric(self):
        return self.scheduler.metric

    @property
    def supports_buffered_results(self) -> bool:
        return self.scheduler.supports_buffered_results

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return self.scheduler.set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller, trial) -> None:
        self.scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self.scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = self.scheduler.on_trial_result(tune_controller, trial, result)
        if decision == self.STOP and trial.config.get(FINAL_PHASE_KEY) == FINAL_PHASE:
            return self.CONTINUE
        return decision

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.scheduler.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller):
        return self.scheduler.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return self.scheduler.debug_string()

    def save(self, checkpoint_path: str) -> None:
        self.scheduler.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.scheduler.restore(checkpoint_path)
