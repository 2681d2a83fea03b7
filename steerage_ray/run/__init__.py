"""Running an experiment end to end: baseline -> global search -> local search -> report,
into an experiment directory that an interrupted run resumes from.

- ``directory``: the experiment directory (``ExperimentDir``), its files and progress;
- ``inputs``: the experiment's dataset, search space and training settings;
- ``session``: starting or joining Ray, fitting per-trial resources to the cluster;
- ``progress``: the lines a person watching sees (``TrialProgress``, a Tune callback);
- ``baseline``, ``phases``: what each phase runs and writes;
- ``front``: the global-search Pareto front (several objectives) and local search's
  start on it;
- ``commands``: the ``steerage`` subcommands (search, resume, local-search, report);
- ``export``: ``steerage export``, choosing the model an export writes;
- ``latency``: ``steerage profile-latency``, a latency table for the experiment's space.
"""

from steerage_ray.run.commands import (
    rebuild_report,
    rerun_local_search,
    resume_experiment,
    run_experiment,
)
from steerage_ray.run.directory import ExperimentDir
from steerage_ray.run.export import export_experiment_model
from steerage_ray.run.inputs import with_dataset_path

__all__ = ["ExperimentDir", "export_experiment_model", "rebuild_report",
           "rerun_local_search", "resume_experiment", "run_experiment", "with_dataset_path"]
