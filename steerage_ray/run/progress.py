"""What a person watching a run sees: one short line per phase and per finished trial."""

from __future__ import annotations

from ray import tune

from steerage_ray.run.directory import TUNE_NAME


def say(message: str) -> None:
    """A short progress line for the person watching."""
    print(f"[steerage] {message}", flush=True)


class TrialProgress(tune.Callback):
    """One line per finished trial with the best accuracy so far (instead of Tune's
    per-trial tables, which ``--verbose`` brings back)."""

    def __init__(self) -> None:
        self.finished, self.best = 0, float("-inf")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        accuracy = result.get("val_acc", float("nan"))
        self.finished += 1
        self.best = max(self.best, accuracy)
        say(f"trial {self.finished} done: val_acc {accuracy:.4f}, params "
            f"{result.get('params', 0):,}, {result.get('epoch', '?')} epochs "
            f"(best so far {self.best:.4f})")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        if trial.max_failures < 0 or trial.run_metadata.num_failures <= trial.max_failures:
            say(f"trial {trial.trial_id} failed before it ran (the reused actor it was "
                f"handed had died); the search restarts from its last saved state")
            return  # trainables.FailurePolicy restarts the search: it is not lost
        self.finished += 1
        reason = (trial.last_result or {}).get("trial_error")
        say(f"trial {self.finished} failed: {trial.trial_id}"
            f"{f': {reason}' if reason else ''} (its error.txt is under "
            f"tune/{TUNE_NAME}); the search goes on without it")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        say(f"trial {trial.trial_id} lost its worker (actor or node died); retrying it "
            f"from its last checkpoint (failure {trial.run_metadata.num_failures} of at "
            f"most {trial.max_failures})")
